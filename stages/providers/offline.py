"""The offline provider: a deterministic generator that builds the backlog from the vision's own
sentences: its capabilities (verb + object), users, success metrics and rules. No network; the same
input gives the same output. The generation is CPU work, so it runs in the process pool it is given.

Epics and features group the vision's capability sentences; the stories, their criteria, tasks and
test cases are written by ``story_writer`` from each story's own capability.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from typing import Any

from stages.capabilities import Capability, capabilities, parts_of, sentence_kind
from stages.providers import story_writer
from stages.providers.base import Completion, CompletionRequest
from stages.roles import vision_roles
from stages.text import complete_title, content_words, normalise, shorten

_PARENS = re.compile(r"\s*\([^)]*\)")
_PRODUCT_WORD = re.compile(r"\b(?:app|product|platform|system|service|tool)\b", re.I)


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


# ----- reading the vision -------------------------------------------------------------------------


@dataclass
class Reading:
    """What each vision sentence is for: capabilities to build, context to cite, metrics, rules."""

    sentences: dict[str, dict[str, Any]]
    order: list[str]
    kinds: dict[str, str]
    roles: list[str]
    metrics: list[tuple[str, list[str]]] = field(default_factory=list)
    rules: list[tuple[str, list[str]]] = field(default_factory=list)
    companions: dict[str, list[str]] = field(default_factory=dict)  # a list intro cited with what follows

    def with_companions(self, ids: list[str]) -> list[str]:
        return list(dict.fromkeys(x for sid in ids for x in [*self.companions.get(sid, []), sid]))

    def of(self, *kinds: str) -> list[dict[str, Any]]:
        return [self.sentences[sid] for sid in self.order if self.kinds[sid] in kinds]


def read(vision: dict[str, Any]) -> Reading:
    sentences = list(vision["sentences"])
    roles = vision_roles(vision.get("target_users", []), [s["text"] for s in sentences])
    structured = bool(vision.get("key_features"))
    product = (vision.get("title") or "").split(" ")[0].strip(" -—:").lower()
    # in free text, what comes before the product is first named is the problem today: context
    first = next(
        (
            i
            for i, s in enumerate(sentences)
            if (product and product in s["text"].lower()) or _PRODUCT_WORD.search(s["text"])
        ),
        0,
    )
    kinds: dict[str, str] = {}
    for i, s in enumerate(sentences):
        kind = sentence_kind(s["text"], s["section"], roles)
        if kind == "capability" and (
            (structured and s["section"] == "vision") or (not structured and i < first)
        ):
            kind = "context"
        kinds[s["id"]] = kind
    reading = Reading({s["id"]: s for s in sentences}, [s["id"] for s in sentences], kinds, roles)
    for i, s in enumerate(sentences):
        if kinds[s["id"]] == "intro":
            target = sentences[i + 1]["id"] if i + 1 < len(sentences) else sentences[max(0, i - 1)]["id"]
            reading.companions.setdefault(target, []).append(s["id"])
    for s in sentences:
        ids = reading.with_companions([s["id"]])
        if kinds[s["id"]] == "metric":
            reading.metrics += [(part, ids) for part in parts_of(s["text"])]
        elif kinds[s["id"]] == "rule":
            reading.rules += [(part, ids) for part in parts_of(s["text"])]
    if not reading.of("capability"):  # nothing acts: build from whatever the vision says
        for sid in reading.order:
            if kinds[sid] in ("context", "plain"):
                kinds[sid] = "capability"
    return reading


def headline(text: str, max_words: int = 8) -> str:
    """A complete phrase for an epic or feature title: no aside in brackets, no cut-off end."""
    text = _PARENS.sub("", text).strip()
    text = re.split(r";\s+|:\s+|,\s+(?:while|so|and|but)\s+", text)[0]
    tokens = text.split()
    for i in range(4, len(tokens)):
        if tokens[i - 1].endswith(","):
            tokens = tokens[:i]
            break
    return shorten(" ".join(tokens), max_words)


def _distinct(titles: list[str], fallback: Callable[[int], str]) -> list[str]:
    """Sibling titles that differ once case and punctuation are folded ('- quote' and 'quote' do not):
    a repeat takes its numbered fallback, so the stories written under them cannot repeat either."""
    seen: set[str] = set()
    out = []
    for i, title in enumerate(titles):
        if normalise(title) in seen:
            title = fallback(i)
        seen.add(normalise(title))
        out.append(title)
    return out


def _overlap(a: str, b: str) -> int:
    return len(content_words(a) & content_words(b))


def _chunks(items: list[dict[str, Any]], n: int) -> list[list[dict[str, Any]]]:
    """``items`` in ``n`` contiguous groups of near-equal size (neighbouring sentences belong together)."""
    size, extra = divmod(len(items), n)
    out, start = [], 0
    for i in range(n):
        end = start + size + (1 if i < extra else 0)
        out.append(items[start:end])
        start = end
    return out


def _attach(groups: list[list[dict[str, Any]]], loose: list[dict[str, Any]]) -> None:
    """Each context sentence joins the group whose sentences it shares most words with."""
    for s in loose:
        best = max(range(len(groups)), key=lambda g: sum(_overlap(s["text"], t["text"]) for t in groups[g]))
        groups[best].append(s)


# ----- per-stage generators -----------------------------------------------------------------------


def epics(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    reading = read(ctx["vision"])
    themes = reading.of("capability") or [reading.sentences[sid] for sid in reading.order]
    n = max(1, min(int(ctx["max_items"]), len(themes)))
    groups = _chunks(themes, n)
    _attach(groups, reading.of("context", "plain"))
    titles = _distinct(
        [complete_title(headline(g[0]["text"], 8), 8, f"Vision theme {i + 1}") for i, g in enumerate(groups)],
        lambda i: f"Vision theme {i + 1}",
    )
    out = []
    for i, group in enumerate(groups):
        ids = reading.with_companions([s["id"] for s in group])
        out.append(
            {
                "title": titles[i],
                "description": "Deliver the outcome described by: "
                + " ".join(_full_stop(reading.sentences[sid]["text"]) for sid in ids),
                "sources": ids,
                "priority": min(4, 1 + (i * 4) // n),
                "business_value": max(10, 100 - i * 15),
            }
        )
    return out


def features(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    reading = read(ctx["vision"])
    epic = ctx["chain"][-1]
    limit = int(ctx["max_items"])
    sources = [reading.sentences[sid] for sid in epic["body"]["sources"] if sid in reading.sentences]
    leads = [s for s in sources if reading.kinds[s["id"]] == "capability"] or sources[:1]
    loose = [s for s in sources if s not in leads and reading.kinds[s["id"]] in ("context", "plain")]
    groups = _chunks(leads, min(limit, len(leads)))
    _attach(groups, loose)
    # room for more features than sentences: a sentence with several capabilities gives one each
    units: list[tuple[str, list[dict[str, Any]]]] = [(headline(g[0]["text"], 9), g) for g in groups]
    spare = limit - len(units)
    for i, (_, group) in enumerate(list(units)):
        if spare <= 0 or len(group) > 1 + len(loose):
            continue
        caps = capabilities(group[0]["text"], reading.roles)[: spare + 1]
        if len(caps) > 1:
            units[units.index((units[i][0], group))] = (caps[0].title(), group)
            units += [(cap.title(), group) for cap in caps[1:]]
            spare -= len(caps) - 1
    titles = _distinct(
        [complete_title(t, 12, f"Capability {i + 1} of {epic['title']}") for i, (t, _) in enumerate(units)],
        lambda i: f"Capability {i + 1} of {epic['title']}",
    )
    return [
        {
            "title": titles[i],
            "description": f"{_full_stop(group[0]['text'])} Part of the epic '{epic['title']}'.",
            "sources": reading.with_companions([s["id"] for s in group]),
            "priority": min(4, 1 + i // 2),
        }
        for i, (title, group) in enumerate(units)
    ]


def stories(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    reading = read(ctx["vision"])
    feature = ctx["chain"][-1]
    caps = [
        cap
        for sid in feature["body"]["sources"]
        if reading.kinds.get(sid) == "capability"
        for cap in capabilities(reading.sentences[sid]["text"], reading.roles)
    ]
    mine = normalise(feature["title"])  # a feature made of one capability of its sentence
    own = [cap for cap in caps if normalise(complete_title(cap.title(), 12, "")) == mine]
    caps = own or caps
    place = sum(int(item.get("position", 0)) * 7**depth for depth, item in enumerate(reversed(ctx["chain"])))
    return story_writer.stories(
        story_writer.StoryContext(
            feature_title=feature["title"],
            epic_title=ctx["chain"][0]["title"],
            sources=list(feature["body"]["sources"]),
            roles=reading.roles or [_fallback_role(ctx["vision"])],
            metrics=reading.metrics,
            rules=reading.rules,
            aim=_aim(reading),
            place=place,
            repair=list(ctx.get("repair") or []),
            taken=list(ctx.get("siblings") or []),
            clashes=_clashes(reading),
        ),
        caps,
        int(ctx["max_items"]),
    )


def _clashes(reading: Reading) -> frozenset[str]:
    """Story titles more than one vision sentence would give (stories of different features are
    written concurrently, so a clash is settled here, from the whole vision, not by who comes first)."""
    seen: dict[str, tuple[str, int]] = {}
    clashes: set[str] = set()
    # the sentences stories are written from: capabilities, else (a vision with none) every sentence
    themes = reading.of("capability") or [reading.sentences[sid] for sid in reading.order]
    for s in themes:
        caps = capabilities(s["text"], reading.roles) or [Capability("use", headline(s["text"]).lower())]
        for k, cap in enumerate(caps):
            titles = [cap.title()] + [c.title() for c in story_writer.extensions(cap, reading.roles, "")]
            for title in {normalise(t) for t in titles}:
                if seen.setdefault(title, (s["id"], k)) != (s["id"], k):
                    clashes.add(title)
    return frozenset(clashes)


def tasks(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    return story_writer.tasks(ctx["chain"][-1], int(ctx["max_items"]))


def test_cases(ctx: dict[str, Any]) -> list[dict[str, Any]]:
    return story_writer.test_cases(ctx["chain"][-1], int(ctx["max_items"]))


def _aim(reading: Reading) -> tuple[str, list[str]]:
    lead = next(iter(reading.of("capability", "context")), None)
    if lead is None:
        return ("the product delivers on its vision", [])
    return (f"the product does what it promises: {headline(lead['text'], 12).lower()}", [lead["id"]])


def _fallback_role(vision: dict[str, Any]) -> str:
    domain = (vision.get("domain") or "").strip().lower()
    return f"{domain} customer" if domain else "customer"


def _full_stop(text: str) -> str:
    text = text.strip()
    return text if text.endswith((".", "!", "?", ":")) else text + "."


GENERATORS = {
    "epics": epics,
    "features": features,
    "stories": stories,
    "tasks": tasks,
    "test_cases": test_cases,
}
