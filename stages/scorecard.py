"""The quality model of a backlog: would a product owner accept it? Each metric has its definition here
(and in the README's "Backlog quality" section), a value, a target and the items that fell short.

- cut_off_titles: titles that end on an article, preposition, conjunction or possessive, with an
  unclosed bracket or quote, or with a dangling punctuation mark. Target 0.
- distinct_{story,test_case,task}_titles: distinct titles of a kind across the whole job (case,
  punctuation, whitespace and a trailing "(2)" folded) ÷ items. Targets 100 %, 95 %, 90 %.
- personas: stories whose role ("As a …, I want") is one of the vision's target users, or (without
  them) a role noun phrase the vision names as a user ÷ stories. Target 100 %.
- distinct_then_clauses: distinct "Then" clauses ÷ criteria across the job. Target 60 %.
- specific_criteria: stories with ≥ 3 Given/When/Then criteria that each name a word of the story's
  own goal ÷ stories. Target 100 %.
- traced_test_cases: test cases that trace to one criterion of their story (most of its words are in
  the case), with ≥ 2 steps whose expected results are observable ÷ test cases. Target 100 %.
- points_follow_size: of the story pairs of different size (criteria + integrations named + rules
  cited), the share where the bigger story has at least the points of the smaller. Target 90 %.
- hours_match_points: stories whose tasks' hours add up to 1–8 hours per story point. Target 90 %.
- coverage: vision sentences cited by at least one story ÷ sentences. Target 100 %.

Pure functions of plain data (item dicts and the vision dict) so the job manager runs them in the
process pool.
"""

from __future__ import annotations

import itertools
import re
from collections import Counter
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from stages.roles import is_user, role_of, vision_roles
from stages.text import content_words, cut_off_reason, normalise

MAX_OFFENDERS = 25
_GWT = re.compile(r"^\s*Given (?P<given>.+?),?\s+When (?P<when>.+?),?\s+Then (?P<then>.+)$", re.I | re.S)
_VAGUE = re.compile(
    r"^(?:ok|okay|works?|it works|success(?:ful)?|passe?s?|done|as expected|correct|no errors?|fine)\.?$",
    re.I,
)
INTEGRATIONS = re.compile(
    r"\b(?:integrat\w*|sync\w*|import\w*|export\w*|api|webhooks?|csv|sms|e-?mail|telematics|"
    r"third[- ]party|calendar feed|payment provider|erp|crm|gateway)\b",
    re.I,
)
HOURS_PER_POINT = (1.0, 8.0)


class Offender(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    kind: str
    title: str
    problem: str


class Metric(BaseModel):
    model_config = ConfigDict(frozen=True)

    key: str
    label: str
    definition: str
    value: float  # a share in 0..1, or a count for cut_off_titles
    target: float
    higher_is_better: bool = True
    ok: bool
    total: int
    offenders: tuple[Offender, ...] = ()

    @property
    def shown(self) -> str:
        if not self.higher_is_better:
            return f"{int(self.value)}"
        return f"{self.value * 100:.0f}%"


class Scorecard(BaseModel):
    model_config = ConfigDict(frozen=True)

    ok: bool
    metrics: tuple[Metric, ...]

    def line(self) -> str:
        """One line for a terminal: every metric with its value, and what fell short."""
        parts = [f"{m.key}={m.shown}{'' if m.ok else ' ✗'}" for m in self.metrics]
        short = [m.key for m in self.metrics if not m.ok]
        verdict = "all targets met" if not short else f"{len(short)} short of target"
        return f"quality: {verdict} — " + ", ".join(parts)


def _off(item: dict[str, Any], problem: str) -> Offender:
    return Offender(id=str(item.get("id", "")), kind=item["kind"], title=item["title"], problem=problem)


def _share(
    key: str, label: str, definition: str, target: float, checked: list[tuple[dict[str, Any], str | None]]
) -> Metric:
    bad = [_off(item, why) for item, why in checked if why]
    total = len(checked)
    value = 1.0 if total == 0 else (total - len(bad)) / total
    return Metric(
        key=key,
        label=label,
        definition=definition,
        value=round(value, 4),
        target=target,
        ok=value >= target - 1e-9,
        total=total,
        offenders=tuple(bad[:MAX_OFFENDERS]),
    )


def then_of(criterion: str) -> str:
    m = _GWT.match(criterion)
    return m["then"].strip() if m else ""


# ----- the metrics --------------------------------------------------------------------------------


def cut_off_titles(items: list[dict[str, Any]]) -> Metric:
    bad = [_off(i, why) for i in items if (why := cut_off_reason(i["title"]))]
    return Metric(
        key="cut_off_titles",
        label="Cut-off titles",
        definition="titles ending on an article, preposition, conjunction or possessive, an open bracket "
        "or quote, or a dangling punctuation mark",
        value=len(bad),
        target=0,
        higher_is_better=False,
        ok=not bad,
        total=len(items),
        offenders=tuple(bad[:MAX_OFFENDERS]),
    )


def distinct_titles(items: list[dict[str, Any]], kind: str, target: float) -> Metric:
    seen: dict[str, dict[str, Any]] = {}
    checked: list[tuple[dict[str, Any], str | None]] = []
    for item in (i for i in items if i["kind"] == kind):
        key = normalise(item["title"])
        first = seen.setdefault(key, item)
        checked.append((item, None if first is item else f"repeats the title of {first.get('id', '')}"))
    name = kind.replace("_", " ")
    return _share(
        f"distinct_{kind}_titles",
        f"Distinct {name} titles",
        f"distinct {name} titles across the job (case, punctuation, whitespace, numbering folded)",
        target,
        checked,
    )


def personas(stories: list[dict[str, Any]], vision: dict[str, Any]) -> Metric:
    listed = list(vision.get("target_users", []))
    users = vision_roles(listed, [s["text"] for s in vision.get("sentences", [])]) + listed
    checked: list[tuple[dict[str, Any], str | None]] = []
    for story in stories:
        role, _ = role_of(story["body"])
        why = (
            None if role and is_user(role, users) else f"'{role or '(no role)'}' is not a user of the vision"
        )
        checked.append((story, why))
    return _share(
        "personas",
        "Personas are users",
        "stories whose 'As a …' role is a target user or a role the vision names as a user",
        1.0,
        checked,
    )


def distinct_then_clauses(stories: list[dict[str, Any]]) -> Metric:
    thens = [normalise(then_of(c)) for s in stories for c in s["body"].get("acceptance_criteria", [])]
    counts = Counter(thens)
    total = len(thens)
    value = 1.0 if not total else len(counts) / total
    offenders = [
        _off(s, f"'Then {then_of(c)[:80]}' is shared by {counts[normalise(then_of(c))]} criteria")
        for s in stories
        for c in s["body"].get("acceptance_criteria", [])[:1]
        if counts[normalise(then_of(c))] > 1
    ]
    return Metric(
        key="distinct_then_clauses",
        label="Distinct Then clauses",
        definition="distinct 'Then' clauses ÷ acceptance criteria across the job",
        value=round(value, 4),
        target=0.6,
        ok=value >= 0.6,
        total=total,
        offenders=tuple(offenders[:MAX_OFFENDERS]),
    )


def _specific(story: dict[str, Any]) -> str | None:
    _, goal = role_of(story["body"])
    goal_words = content_words(goal)
    criteria = story["body"].get("acceptance_criteria", [])
    good = [c for c in criteria if _GWT.match(c) and content_words(c) & goal_words]
    if len(good) >= 3:
        return None
    return f"{len(good)} of {len(criteria)} criteria are Given/When/Then naming the story's goal (need 3)"


def _traced(case: dict[str, Any], criteria: list[str]) -> str | None:
    body = case["body"]
    steps = body.get("steps", [])
    if len(steps) < 2:
        return f"{len(steps)} steps (need 2)"
    vague = [s for s in steps if len(str(s.get("expected", "")).split()) < 3 or _VAGUE.match(s["expected"])]
    if vague:
        return f"expected result '{vague[0].get('expected', '')}' is not observable"
    text = content_words(
        " ".join(
            [case["title"], body.get("description", ""), body.get("preconditions", "")]
            + [f"{s['action']} {s['expected']}" for s in steps]
        )
    )
    scores = sorted(
        (len(content_words(c) & text) / max(1, len(content_words(c))) for c in criteria), reverse=True
    )
    if not scores or scores[0] < 0.6:
        return "names no acceptance criterion of its story"
    return None


def points_follow_size(stories: list[dict[str, Any]], sizes: dict[str, int]) -> Metric:
    pairs = [(a, b) for a, b in itertools.combinations(stories, 2) if sizes[a["id"]] != sizes[b["id"]]]
    agree = 0
    for a, b in pairs:
        small, big = (a, b) if sizes[a["id"]] < sizes[b["id"]] else (b, a)
        agree += big["body"].get("story_points", 0) >= small["body"].get("story_points", 0)
    value = 1.0 if not pairs else agree / len(pairs)
    points = {s["body"].get("story_points") for s in stories}
    flat = len(set(sizes.values())) > 1 and len(points) < 2
    offenders = (
        [_off(s, f"{s['body'].get('story_points')} points for size {sizes[s['id']]}") for s in stories]
        if value < 0.9 or flat
        else []
    )
    return Metric(
        key="points_follow_size",
        label="Points follow size",
        definition="story pairs of different size (criteria + integrations + rules cited) where the "
        "bigger one has at least the points of the smaller",
        value=round(0.0 if flat else value, 4),
        target=0.9,
        ok=value >= 0.9 and not flat,
        total=len(pairs),
        offenders=tuple(offenders[:MAX_OFFENDERS]),
    )


def story_size(story: dict[str, Any], rule_ids: set[str]) -> int:
    """Criteria, plus integrations the story names, plus constraints (rules) it cites."""
    body = story["body"]
    text = " ".join([story["title"], body.get("user_story", ""), *body.get("acceptance_criteria", [])])
    integrations = {m.lower().replace("-", "")[:6] for m in INTEGRATIONS.findall(text)}  # "import(ing)" once
    rules = [s for s in body.get("sources", []) if s in rule_ids]
    return len(body.get("acceptance_criteria", [])) + len(integrations) + len(rules)


def _hours(story: dict[str, Any], tasks: list[dict[str, Any]]) -> str | None:
    if not tasks:
        return None
    hours = sum(float(t["body"].get("estimate_hours", 0)) for t in tasks)
    points = max(1, int(story["body"].get("story_points", 1)))
    low, high = HOURS_PER_POINT
    if low * points <= hours <= high * points:
        return None
    return f"{hours:g} task hours for {points} points ({hours / points:.1f} h per point)"


def score(items: list[dict[str, Any]], vision: dict[str, Any], coverage: dict[str, Any]) -> Scorecard:
    """Every metric of the backlog ``items`` (dicts with id, kind, title, parent_id, body)."""
    generated = [i for i in items if i["kind"] in ("epic", "feature", "story", "task", "test_case")]
    stories = [i for i in items if i["kind"] == "story"]
    children: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        children.setdefault(str(item.get("parent_id")), []).append(item)
    by_id = {i["id"]: i for i in stories}
    rule_ids = {s["id"] for s in vision.get("sentences", []) if s["section"] == "constraints"}
    sizes = {s["id"]: story_size(s, rule_ids) for s in stories}
    cases = [i for i in items if i["kind"] == "test_case"]

    def crit(case: dict[str, Any]) -> list[str]:
        parent = by_id.get(case.get("parent_id") or "")
        return list(parent["body"].get("acceptance_criteria", [])) if parent else []

    def of_kind(kind: str) -> Callable[[dict[str, Any]], list[dict[str, Any]]]:
        return lambda s: [c for c in children.get(s["id"], []) if c["kind"] == kind]

    tasks_of = of_kind("task")
    sentences = int(coverage.get("sentences", 0))
    covered = int(coverage.get("covered", 0))
    metrics = (
        cut_off_titles(generated),
        distinct_titles(items, "story", 1.0),
        distinct_titles(items, "test_case", 0.95),
        distinct_titles(items, "task", 0.9),
        personas(stories, vision),
        distinct_then_clauses(stories),
        _share(
            "specific_criteria",
            "Specific criteria",
            "stories with ≥ 3 Given/When/Then criteria naming something of the story's own goal",
            1.0,
            [(s, _specific(s)) for s in stories],
        ),
        _share(
            "traced_test_cases",
            "Test cases trace to a criterion",
            "test cases tracing to one criterion of their story, with ≥ 2 steps and observable results",
            1.0,
            [(c, _traced(c, crit(c))) for c in cases],
        ),
        points_follow_size(stories, sizes),
        _share(
            "hours_match_points",
            "Task hours match points",
            f"stories whose tasks add up to {HOURS_PER_POINT[0]:g}–{HOURS_PER_POINT[1]:g} hours per point",
            0.9,
            [(s, _hours(s, tasks_of(s))) for s in stories],
        ),
        Metric(
            key="coverage",
            label="Vision coverage",
            definition="vision sentences cited by at least one story",
            value=round(covered / sentences, 4) if sentences else 1.0,
            target=1.0,
            ok=covered >= sentences,
            total=sentences,
            offenders=tuple(
                Offender(id=u["id"], kind="sentence", title=u["text"][:120], problem="no story cites it")
                for u in coverage.get("uncovered", [])[:MAX_OFFENDERS]
            ),
        ),
    )
    return Scorecard(ok=all(m.ok for m in metrics), metrics=metrics)


def score_json(
    items: list[dict[str, Any]], vision: dict[str, Any], coverage: dict[str, Any]
) -> dict[str, Any]:
    """``score`` as JSON-ready data with the summary line (module level: the process pool runs it)."""
    card = score(items, vision, coverage)
    return {**card.model_dump(mode="json"), "line": card.line()}
