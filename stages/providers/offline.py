"""The offline provider: a deterministic generator that builds the backlog from the vision's own
sentences, personas, features, metrics and constraints. No network; the same input gives the same
output. The generation is CPU work, so it runs in the process pool the provider is given.
"""

from __future__ import annotations

import asyncio
import json
import re
from concurrent.futures import Executor
from typing import Any

from stages.providers.base import Completion, CompletionRequest

_CLAUSE_SPLIT = re.compile(r";\s+|,\s+(?:and\s+|while\s+|so\s+)?|\s+and\s+(?=[a-z]+s?\s)|\s+while\s+")
_PERSONA_HINT = re.compile(
    r"\b(?:lets|helps|allows|enables|gives|for)\s+([a-z][a-z ,-]{2,80}?)"
    r"(?:\s+(?:to|who|that|one|a|an|the|keep|lend|find|book|run|manage|fill|cut)\b|[.;:]|$)",
    re.I,
)
_LIST_SPLIT = re.compile(r",\s*(?:and\s+)?|\s+and\s+")
_PRONOUNS = frozenset(
    [
        "them",
        "us",
        "you",
        "it",
        "me",
        "him",
        "her",
        "everyone",
        "everybody",
        "anyone",
        "someone",
        "all",
        "each",
    ]
)
_ARTICLE = re.compile(r"^(?:a|an|the|our|its)\s+", re.I)
FIB = (2, 3, 5, 8)
_DANGLING = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "with",
        "of",
        "for",
        "per",
        "to",
        "in",
        "on",
        "by",
        "from",
        "that",
        "which",
        "their",
        "its",
    ]
)


class OfflineProvider:
    name = "offline"

    def __init__(self, pool: Executor | None = None) -> None:
        self._pool = pool

    async def complete(self, request: CompletionRequest) -> Completion:
        loop = asyncio.get_running_loop()
        content = await loop.run_in_executor(self._pool, generate_json, request.stage, request.context)
        prompt_chars = sum(len(m.content) for m in request.messages)
        return Completion(
            content=content,
            finish_reason="stop",
            prompt_tokens=prompt_chars // 4,
            completion_tokens=len(content) // 4,
            model="offline",
        )

    async def aclose(self) -> None:
        return None


def generate_json(stage: str, context: dict[str, Any]) -> str:
    """Module-level so a process pool can run it; returns the stage answer as JSON text."""
    items = GENERATORS[stage](context)[: int(context["max_items"])]
    return json.dumps({stage: items})


# ----- text helpers -------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return text.strip().rstrip(".!?").split()


def phrase(text: str, max_words: int = 9) -> str:
    words = _words(_ARTICLE.sub("", text.strip()))[:max_words]
    while len(words) > 2 and words[-1].lower().strip(",;:") in _DANGLING:
        words.pop()  # never end a title on "and", "with", "the"...
    out = " ".join(words).rstrip(",;:")
    return out[:1].upper() + out[1:] if out else text.strip()


def lower_first(text: str) -> str:
    text = text.strip().rstrip(".!?")
    return text[:1].lower() + text[1:] if text[1:2].islower() or len(text) < 2 else text


def clauses(text: str) -> list[str]:
    parts = [p.strip(" .") for p in _CLAUSE_SPLIT.split(text) if p and p.strip(" .")]
    good = [p for p in parts if len(p.split()) >= 3]
    return good or [text.strip(" .")]


def singular_persona(user: str) -> str:
    """'Front-desk coordinators' -> 'front-desk coordinator'; 'Patients booking x' -> 'patient booking x'."""
    words = user.strip().split()
    for i, w in enumerate(words[:3]):
        low = w.lower()
        if low.endswith("ies"):
            words[i] = w[:-3] + "y"
            break
        if low.endswith("s") and not low.endswith("ss"):
            words[i] = w[:-1]
            break
    text = " ".join(words)
    return text[:1].lower() + text[1:]


def article(noun: str) -> str:
    return "an" if noun[:1].lower() in "aeiou" else "a"


def joined(sentences: list[dict[str, Any]]) -> str:
    """Sentences as prose: key features and metrics are bare phrases, so give each its full stop."""
    return " ".join(
        t if t.endswith((".", "!", "?")) else t + "." for t in (s["text"].strip() for s in sentences)
    )


def _overlap(a: str, b: str) -> int:
    wa = {w.lower().strip(",.") for w in a.split() if len(w) > 3}
    wb = {w.lower().strip(",.") for w in b.split() if len(w) > 3}
    return len(wa & wb)


# ----- per-stage generators -----------------------------------------------------------------------


def _sentences(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    return list(ctx["vision"]["sentences"])


def _personas(ctx: dict[str, Any]) -> list[str]:
    users = [singular_persona(u) for u in ctx["vision"].get("target_users", [])]
    if users:
        return users
    # "gives fleet managers, shop technicians and drivers one place" names three personas
    hints = [
        part.strip()
        for s in _sentences(ctx)
        for m in _PERSONA_HINT.finditer(s["text"])
        for part in _LIST_SPLIT.split(m.group(1))
        if len(part.strip()) > 2
    ]
    # "... until an auditor asks for them." is no persona: "As a them, I want ..." was the result.
    found = list(dict.fromkeys(singular_persona(h) for h in hints if h.split()[0].lower() not in _PRONOUNS))
    domain = ctx["vision"].get("domain") or ""
    return found[:3] or [f"{domain} customer".strip() if domain else "customer"]


def _section(ctx: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [s for s in _sentences(ctx) if s["section"] == name]


def _benefits(ctx: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """Each benefit with the sentence ids it comes from (a success metric, else the vision's aim)."""
    metrics = _section(ctx, "success_metrics")
    if metrics:
        return [(f"we reach the goal of {lower_first(m['text'])}", [m["id"]]) for m in metrics]
    vision = _section(ctx, "vision")
    if vision:
        return [(f"{lower_first(clauses(vision[0]['text'])[-1])} becomes real", [vision[0]["id"]])]
    return [("the product delivers on its vision", [])]


def epics(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    sents = _sentences(ctx)
    themes = [s for s in sents if s["section"] == "key_features"] or [
        s for s in sents if s["section"] == "vision"
    ]
    n = max(1, min(int(ctx["max_items"]), len(themes)))
    groups: list[list[dict[str, Any]]] = [themes[i::n] for i in range(n)]
    # every capability sentence lands in the epic whose themes it resembles most; success metrics and
    # constraints cut across epics, so stories cite them (as benefits and rules) instead
    for s in sents:
        if s not in themes and s["section"] in ("vision", "key_features"):
            best = max(range(n), key=lambda g: sum(_overlap(s["text"], t["text"]) for t in groups[g]))
            groups[best].append(s)
    out = []
    for i, group in enumerate(groups):
        lead = group[0]["text"]
        out.append(
            {
                "title": phrase(clauses(lead)[0], 8),
                "description": "Deliver the outcome described by: " + joined(group),
                "sources": [s["id"] for s in group],
                "priority": min(4, 1 + (i * 4) // n),
                "business_value": max(10, 100 - i * 15),
            }
        )
    return out


def features(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    epic = ctx["chain"][-1]
    by_id = {s["id"]: s for s in _sentences(ctx)}
    sentences = [by_id[sid] for sid in epic["body"]["sources"]]
    limit = int(ctx["max_items"])
    if len(sentences) > limit:  # more sentences than features allowed: each feature covers several
        groups = [sentences[i::limit] for i in range(limit)]
        parts = [
            (clauses(g[0]["text"])[0], " ".join(s["text"] for s in g), [s["id"] for s in g]) for g in groups
        ]
    else:  # key features are one capability each; long vision sentences hold several
        parts = [
            (clause, clause, [s["id"]])
            for s in sentences
            for clause in ([s["text"]] if s["section"] != "vision" else clauses(s["text"]))
        ]
        if len(parts) > limit:  # splitting would push sentences past the limit: one feature each
            parts = [(clauses(s["text"])[0], s["text"], [s["id"]]) for s in sentences]
    return [
        {
            "title": phrase(lead, 8),
            "description": f"{text.rstrip('.')}. Part of the epic '{epic['title']}'.",
            "sources": ids,
            "priority": min(4, 1 + i // 2),
        }
        for i, (lead, text, ids) in enumerate(parts)
    ]


_ASPECTS = (
    ("{goal}", "{benefit}"),
    ("to see at a glance the current state of {topic}", "I can act before problems grow"),
    ("to correct a mistake in {topic} without calling support", "errors never block my work"),
    ("to be notified when something changes in {topic}", "I never miss an update that affects me"),
    ("to review the history of {topic}", "I can explain every decision later"),
)


def stories(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    feature = ctx["chain"][-1]
    topic = lower_first(feature["title"])
    # the feature's lead capability only: a grouped feature's description holds several sentences
    goal = lower_first(re.split(r"(?<=[.!?])\s+", feature["body"]["description"])[0])
    personas, benefits = _personas(ctx), _benefits(ctx)
    constraints = _section(ctx, "constraints")
    out = []
    for i, (want, why) in enumerate(_ASPECTS):
        persona = personas[(i + len(topic)) % len(personas)]
        g = want.format(goal=goal, topic=topic)
        benefit_text, benefit_ids = benefits[(i + len(topic)) % len(benefits)]
        benefit = why.format(benefit=benefit_text)
        action = g[3:] if g.startswith("to ") else f"use {topic}"
        constraint = constraints[i % len(constraints)] if constraints else None
        rule = constraint["text"] if constraint else ""
        cited = benefit_ids if "{benefit}" in why else []
        extra = cited + ([constraint["id"]] if constraint else [])
        out.append(
            {
                "title": phrase(f"{persona}: {action}", 12),
                "user_story": f"As {article(persona)} {persona}, I want {g}, so that {benefit}",
                "description": f"The {persona} needs {topic}. {feature['body']['description']}",
                "acceptance_criteria": [
                    f"Given {article(persona)} {persona} is signed in, When they {action}, "
                    f"Then the result is saved and shown to them at once",
                    f"Given incomplete or invalid input for {topic}, When the {persona} submits it, "
                    f"Then a message names the problem and nothing is saved",
                    f"Given {lower_first(rule)}, When the {persona} uses {topic}, "
                    f"Then the rule '{phrase(rule, 10)}' holds"
                    if constraint
                    else f"Given the {persona} changed something in {topic}, When they come back later, "
                    f"Then the change is still there",
                ],
                "story_points": FIB[(len(_words(goal)) + i) % len(FIB)],
                "priority": min(4, 1 + i),
                "sources": list(dict.fromkeys([*feature["body"]["sources"], *extra])),
            }
        )
    return out


_TASKS = (
    ("Design", "Design the interaction and data model for: {title}", 0.25),
    ("Development", "Implement the service logic and API for: {title}", 0.35),
    ("Development", "Build the screens for: {title}", 0.25),
    ("Testing", "Automate the acceptance tests for: {title}", 0.15),
    ("Documentation", "Document for users: {title}", 0.1),
    ("Deployment", "Roll out behind a feature flag: {title}", 0.1),
)


def tasks(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    story = ctx["chain"][-1]
    hours = story["body"]["story_points"] * 4
    out = []
    for activity, template, share in _TASKS:
        out.append(
            {
                "title": template.format(title=story["title"]),
                "description": f"{template.format(title=story['title'])}. "
                f"Story: {story['body']['user_story']}",
                "estimate_hours": max(1.0, round(hours * share * 2) / 2),
                "activity": activity,
                "sources": story["body"]["sources"],
            }
        )
    return out


_GWT = re.compile(r"^Given (?P<given>.+?),?\s+When (?P<when>.+?),?\s+Then (?P<then>.+)$", re.I | re.S)


def test_cases(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    story = ctx["chain"][-1]
    out = []
    for i, criterion in enumerate(story["body"]["acceptance_criteria"]):
        m = _GWT.match(criterion)
        given, when, then = (m["given"], m["when"], m["then"]) if m else (criterion, "they act", "it works")
        out.append(
            {
                # the outcome is what tells sibling cases apart; the story is their parent already
                "title": phrase(f"Verify that {lower_first(then)}", 14),
                "description": f"Checks the acceptance criterion: {criterion}",
                "preconditions": given[:1].upper() + given[1:] + ".",
                "steps": [
                    {"action": f"Open '{story['title']}'", "expected": "The screen for the story is shown"},
                    {
                        "action": when[:1].upper() + when[1:] + ".",
                        "expected": then[:1].upper() + then[1:] + ".",
                    },
                ],
                "priority": min(4, 1 + i),
                "sources": story["body"]["sources"],
            }
        )
    return out


GENERATORS = {
    "epics": epics,
    "features": features,
    "stories": stories,
    "tasks": tasks,
    "test_cases": test_cases,
}
