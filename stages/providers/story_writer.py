"""The offline provider's story writer: one story per capability (verb + object), and from that
capability its Given/When/Then criteria, its tasks and its test cases, so no two stories share them.

Points follow the story's size (criteria, integrations named, rules cited), as the quality model
measures it; the tasks' hours add up to four hours per point.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from stages.capabilities import Capability
from stages.repair import cut_at_word
from stages.roles import is_user, role_of
from stages.schema import SENTENCE_MAX, TITLE_SCHEMA_MAX
from stages.scorecard import story_size
from stages.text import (
    article,
    capitalise,
    complete_title,
    content_words,
    core,
    cut_off_reason,
    lower_first,
    normalise,
    shorten,
)

POINTS = {3: 2, 4: 3, 5: 5, 6: 8}  # size -> points; 7 and more is 13
HOURS_PER_POINT = 4.0
_GWT = re.compile(r"^Given (?P<given>.+?),?\s+When (?P<when>.+?),?\s+Then (?P<then>.+)$", re.I | re.S)
EXTERNAL = re.compile(
    r"\b(?:sms|e-?mail|telematics|api|webhooks?|calendar feed|payment provider|erp|crm)\b", re.I
)
_SELF = re.compile(r"^(?:the\s+)?(?:\w+\s+)?(?:app|product|platform|system|service|tool)$", re.I)
_MULTI_VERBS = ("get notified about", "fill in", "set up", "sign in")


@dataclass(frozen=True)
class StoryContext:
    feature_title: str
    epic_title: str
    sources: list[str]
    roles: list[str]
    metrics: list[tuple[str, list[str]]]
    rules: list[tuple[str, list[str]]]
    aim: tuple[str, list[str]]
    place: int  # the feature's place in the job: spreads metrics, rules and personas over stories
    repair: list[str]
    taken: list[str]
    clashes: frozenset[str] = frozenset()  # story titles other features of the job also write


_OVERSEERS = ("manager", "owner", "head", "lead", "admin", "coordinator", "planner", "officer", "staff")


def _overseer(roles: list[str], fallback: str) -> str:
    return next((r for r in roles if any(w in r for w in _OVERSEERS)), fallback)


def extensions(main: Capability, roles: list[str], persona: str) -> list[Capability]:
    """At most two more stories about the feature's main object, the kind that object calls for."""
    thing, doing = core(main.thing), gerund(main.verb)
    boss = _overseer(roles, persona)
    if _SELF.match(thing) or not content_words(thing):  # "correct the app" is no story
        return []
    return {
        "create": [
            Capability("correct", f"{thing} after {doing} {_pronoun(thing)}", role=persona),
            Capability("review", f"the {doing} history of {thing}", role=boss),
        ],
        "view": [
            Capability("export", f"{thing} as a CSV file", role=boss),
            Capability("get notified about", f"big changes in {thing}", role=persona),
        ],
        "send": [
            Capability("see", f"the delivery log of {thing}", role=boss),
            Capability("pause", f"{thing} for a chosen period", role=boss),
        ],
        "change": [
            Capability("review", f"the {doing} history of {thing}", role=boss),
            Capability("undo", f"the last change to {thing}", role=persona),
        ],
    }[main.kind]


def _persona(cap: Capability, roles: list[str], index: int) -> str:
    if cap.role and is_user(cap.role, roles):
        return cap.role
    if cap.role:
        match = next((r for r in roles if r.endswith(cap.role.split()[-1])), None)
        if match:
            return match
    text = content_words(f"{cap.verb} {cap.qualifier}")
    target = content_words(cap.obj)  # a role named in the object is who receives it, not who acts
    candidates = [r for r in roles if not content_words(r) & target] or roles
    scored = [
        (len(content_words(r) & text), -((i - index) % len(candidates)), r) for i, r in enumerate(candidates)
    ]
    best = max(scored)
    return best[2] if best[0] > 0 else candidates[index % len(candidates)]


def stories(sc: StoryContext, caps: list[Capability], limit: int) -> list[dict[str, Any]]:
    main = caps[0] if caps else Capability("use", lower_first(sc.feature_title))
    pool = [*caps] if caps else [main]
    first = _persona(main, sc.roles, sc.place)
    pool += extensions(main, sc.roles, first)[: max(0, limit - len(pool))]
    out: list[dict[str, Any]] = []
    taken = {normalise(t) for t in sc.taken} | set(sc.clashes)
    for i, cap in enumerate(pool[:limit]):
        persona = first if i == 0 else _persona(cap, sc.roles, sc.place + i)
        title = complete_title(cap.title(), 12, f"Story {i + 1} of {sc.feature_title}")
        flagged = any(p.startswith(f"item {i} ") for p in sc.repair)
        where = _where(sc.feature_title, sc.epic_title)
        if (flagged or normalise(title) in taken) and normalise(where) not in normalise(title):
            qualified = _qualified(title, where)  # the job already has it: say where it belongs
            # a qualifier cut inside a quote or bracket reads as cut off: number the story instead
            title = (
                f"{cut_at_word(title, TITLE_SCHEMA_MAX - 9)}, story {i + 1}"
                if cut_off_reason(qualified)
                else qualified
            )
        if normalise(title) in taken:  # two capabilities of one feature read the same
            title = f"{cut_at_word(title, TITLE_SCHEMA_MAX - 9)}, story {i + 1}"
        taken.add(normalise(title))
        out.append(_story(sc, cap, persona, title, sc.place + i))
    return out


def _where(feature_title: str, epic_title: str) -> str:
    """'<feature> in <epic>', short enough to follow a story title; a sibling's number ('(2)') kept,
    as it is what tells two same-titled features apart."""

    def squeeze(title: str, room: int) -> str:
        m = re.match(r"^(.*?)(\s*\(\d+\))?$", lower_first(title), re.S)
        base, number = (m[1], m[2] or "") if m else (title, "")
        return cut_at_word(base, max(12, room - len(number))) + re.sub(r"\s*\((\d+)\)", r" \1", number)

    half = (TITLE_SCHEMA_MAX // 2 - len(" in ")) // 2
    return f"{squeeze(feature_title, half)} in {squeeze(epic_title, half)}"


def _qualified(title: str, where: str) -> str:
    """``title for where`` within the schema's title length (so no repair cuts the qualifier off): the
    title gives way, at a whole word."""
    room = TITLE_SCHEMA_MAX - len(" for ") - len(where)
    return f"{cut_at_word(title, max(room, 12))} for {where}"


def _story(sc: StoryContext, cap: Capability, persona: str, title: str, slot: int) -> dict[str, Any]:
    benefit, benefit_ids = (
        (
            f"we reach the goal of {lower_first(sc.metrics[slot % len(sc.metrics)][0])}",
            sc.metrics[slot % len(sc.metrics)][1],
        )
        if sc.metrics
        else sc.aim
    )
    rule = sc.rules[slot % len(sc.rules)] if sc.rules else None
    others = [r for r in sc.roles if r != persona] or ["guest"]
    criteria = criteria_for(cap, persona, rule[0] if rule else "", others[slot % len(others)])
    body = {
        "title": title,
        "user_story": f"As {article(persona)} {persona}, I want {cap.goal()}, so that {benefit}",
        "description": f"{capitalise(cap.goal()[3:])}. Part of the feature '{sc.feature_title}'.",
        "acceptance_criteria": criteria,
        "story_points": 2,
        "priority": min(4, 1 + slot % 4),
        "sources": list(dict.fromkeys([*sc.sources, *benefit_ids, *(rule[1] if rule else [])])),
    }
    rule_ids = set(rule[1]) if rule else set()
    size = story_size({"title": title, "body": body}, rule_ids)
    body["story_points"] = POINTS.get(size, 13 if size > 6 else 2)
    return body


def criteria_for(cap: Capability, persona: str, rule: str, other: str) -> list[str]:
    """Given/When/Then criteria that each name the capability's object (and its qualifier, rule and
    integrations when it has them)."""
    full, v, p = cap.thing, cap.verb, persona
    t = lower_first(cap.title()[len(v) :].strip()) or full  # the object as the title names it
    kind = cap.kind
    given = {
        "view": f"{article(p)} {p} with access to {t}",
        "create": f"{article(p)} {p} is signed in",
        "change": f"{article(p)} {p} has {t} saved earlier",
        "send": f"{article(p)} {p} has {t} switched on",
    }[kind]
    doing = gerund(v)
    then = {
        "view": f"{t} is shown with figures as of the last update",
        "create": f"the {doing} of {t} is saved with their name and the time, and shows in their list",
        "change": f"the {doing} of {t} shows at once and the previous version stays in its history",
        "send": f"the {doing} of {t} reaches every recipient within five minutes and is logged",
    }[kind]
    when = f"{v} {full}" + (f" {cap.qualifier}" if cap.qualifier else "")
    out = [f"Given {given}, When they {when}, Then {then}"]
    if kind == "view":
        out.append(
            f"Given no data exists yet for {t}, When the {p} opens it, "
            f"Then {t} shows an empty state that says what to do first"
        )
    else:
        out.append(
            f"Given a required detail of {t} is missing, When the {p} tries to {v} it, "
            f"Then the {doing} of {t} stops, nothing is saved and the missing detail is named"
        )
    if rule:
        out.append(f"Given the rule '{rule}', When the {p} goes to {v} {t}, Then {t} meets the rule '{rule}'")
    else:
        out.append(
            f"Given {article(other)} {other} who may not {v} {t}, When they try to, "
            f"Then {t} stays as it was and they are told who can grant access"
        )
    if cap.qualifier:
        q = shorten(cap.qualifier, 12)
        out.append(f"Given the situation '{q}', When the {p} goes to {v} {t}, Then {t} still works {q}")
    for name in dict.fromkeys(m.lower() for m in EXTERNAL.findall(f"{full} {cap.qualifier}")):
        out.append(
            f"Given the {name.upper() if len(name) <= 4 else name} link is down, "
            f"When the {p} goes to {v} {t}, "
            f"Then {t} is kept, marked as pending and sent again once the {name} link is back"
        )
    return [_fit(c) for c in out]


def _fit(criterion: str) -> str:
    """The criterion within the request schema's sentence length: each of its Given/When/Then parts
    shortened to whole phrases, the longest first, rather than cut mid-clause by the answer's repair."""
    m = _GWT.match(criterion)
    if len(criterion) <= SENTENCE_MAX or m is None:
        return criterion
    parts = {k: m[k].strip() for k in ("given", "when", "then")}
    while len(f"Given {parts['given']}, When {parts['when']}, Then {parts['then']}") > SENTENCE_MAX:
        key = max(parts, key=lambda k: len(parts[k].split()))
        n = len(parts[key].split())
        shorter = shorten(parts[key], n - 1)
        if n <= 3 or len(shorter.split()) >= n:  # no whole phrase is shorter: the answer's repair cuts it
            break
        parts[key] = shorter
    return f"Given {parts['given']}, When {parts['when']}, Then {parts['then']}"


def _pronoun(thing: str) -> str:
    head = thing.split()[-1].lower() if thing.split() else ""
    return "them" if head.endswith("s") and not head.endswith("ss") else "it"


def gerund(verb: str) -> str:
    """'log' -> 'logging', 'make' -> 'making', 'see' -> 'seeing', 'fill in' -> 'filling in'."""
    head, _, rest = verb.partition(" ")
    if head.endswith("e") and not head.endswith(("ee", "ye", "oe")):
        head = head[:-1] + "ing"
    elif (
        len(head) <= 4
        and sum(c in "aeiou" for c in head) == 1
        and head[-2] in "aeiou"
        and head[-1] not in "aeiouwxy"
    ):  # "log" -> "logging", "flag" -> "flagging"; "book" -> "booking"
        head = head + head[-1] + "ing"
    else:
        head += "ing"
    return f"{head} {rest}".strip()


# ----- tasks --------------------------------------------------------------------------------------


def _parts(story: dict[str, Any]) -> tuple[str, str, str, str]:
    """(verb, object, persona, kind) of a story, read back from its title and user story."""
    title = str(story["title"])
    verb = next((m for m in _MULTI_VERBS if title.lower().startswith(m)), title.split(" ", 1)[0].lower())
    thing = lower_first(title[len(verb) :].strip()) or "the result"
    persona = role_of(story["body"])[0] or "user"
    return verb, thing, persona, Capability(verb, thing).kind


def tasks(story: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    body = story["body"]
    verb, thing, persona, kind = _parts(story)
    build = {
        "view": f"Build the query that lets people {verb} {thing}",
        "create": f"Validate and store {thing} when people {verb} it",
        "change": f"Keep a history of each change when people {verb} {thing}",
        "send": f"Build the delivery job to {verb} {thing} with retries",
    }[kind]
    plan: list[tuple[str, str, float]] = [
        ("Design", f"Design how {article(persona)} {persona} can {verb} {thing}", 2),
        ("Development", build, 3),
        ("Development", f"Build the screen to {verb} {thing}", 3),
    ]
    for criterion in body["acceptance_criteria"][2:]:
        given = (_GWT.match(criterion) or _GWT.match("Given x, When y, Then z"))["given"]  # type: ignore[index]
        if given.startswith("the rule"):
            plan.append(("Development", f"Enforce {given[4:]} when people {verb} {thing}", 2))
        elif given.startswith("the situation"):
            plan.append(("Development", f"Make {thing} work in {given[4:]}", 2))
        elif " link is down" in given:
            plan.append(
                (
                    "Development",
                    f"Connect {thing} to {given[4:].replace(' link is down', '')} with retries",
                    2,
                )
            )
    plan.append(("Testing", f"Automate the acceptance tests for {lower_first(story['title'])}", 2))
    plan.append(("Documentation", f"Write the help page on how to {verb} {thing}", 1))
    chosen = [*plan[: max(1, limit - 1)], plan[-2]] if limit < len(plan) and limit > 1 else plan[:limit]
    total = float(body["story_points"]) * HOURS_PER_POINT
    weights = sum(w for _, _, w in chosen)
    return [
        {
            "title": complete_title(title, 20, f"{activity} task {n + 1} of {story['title']}"),
            "description": f"{shorten(title, 40)}. Story: {body['user_story']}",
            "estimate_hours": min(40.0, max(0.5, round(total * w / weights * 2) / 2)),
            "activity": activity,
            "sources": body["sources"],
        }
        for n, (activity, title, w) in enumerate(chosen)
    ]


# ----- test cases ---------------------------------------------------------------------------------


def _label(given: str, index: int) -> str:
    if index == 0:
        return "main flow"
    if given.startswith(("a required detail", "no data exists")):
        return "missing data" if given.startswith("no data") else "missing detail refused"
    if given.startswith("the rule"):
        return "rule holds"
    if given.startswith("the situation"):
        return shorten(given[len("the situation ") :].strip("'"), 6)
    if " link is down" in given:
        return "link outage"
    return "access refused"


def test_cases(story: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    _, thing, persona, kind = _parts(story)
    out = []
    for i, criterion in enumerate(story["body"]["acceptance_criteria"][:limit]):
        m = _GWT.match(criterion)
        given, when, then = (m["given"], m["when"], m["then"]) if m else (criterion, "they act", criterion)
        steps = [
            {
                "action": f"Set up: {given}.",
                "expected": f"{capitalise(thing)} is on screen for the {persona}",
            },
            {"action": capitalise(when) + ".", "expected": capitalise(then) + "."},
        ]
        if kind in ("create", "change") and i == 0:
            steps.append(
                {
                    "action": f"Reload the page and open {thing} again",
                    "expected": f"{capitalise(thing)} still shows the result of step 2",
                }
            )
        out.append(
            {
                "title": complete_title(
                    f"{story['title']}: {_label(given, i)}", 24, f"{story['title']}: check {i + 1}"
                ),
                "description": f"Checks the acceptance criterion: {criterion}",
                "preconditions": capitalise(given) + ".",
                "steps": steps,
                "priority": min(4, 1 + i),
                "sources": story["body"]["sources"],
            }
        )
    return out
