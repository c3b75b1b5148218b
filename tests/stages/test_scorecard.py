"""The quality model on hand-made backlogs: each metric counts what its definition says, names the
offending items, and compares with its target."""

from __future__ import annotations

from typing import Any

from stages.scorecard import Scorecard, score
from stages.text import cut_off_reason, normalise, shorten

VISION: dict[str, Any] = {
    "target_users": ["Truss scouts", "Head growers"],
    "sentences": [
        {"id": "S1", "section": "vision", "text": "Scouts record the truss count on a handheld."},
        {"id": "S2", "section": "constraints", "text": "Works offline for a day."},
    ],
}
COVERED = {"sentences": 2, "covered": 2, "uncovered": []}


def story(sid: str, title: str, role: str = "truss scout", **body: Any) -> dict[str, Any]:
    goal = body.pop("goal", f"to {title.lower()}")
    criteria = body.pop(
        "criteria",
        [
            f"Given a {role} is signed in, When they {title.lower()}, Then the {title.lower()} is saved",
            f"Given a detail is missing, When they {title.lower()}, Then the {title.lower()} names it",
            f"Given no access, When they try to {title.lower()}, Then the {title.lower()} stays hidden",
        ],
    )
    return {
        "id": sid,
        "kind": "story",
        "parent_id": "F1",
        "title": title,
        "body": {
            "title": title,
            "user_story": f"As a {role}, I want {goal}, so that we save time",
            "acceptance_criteria": criteria,
            "story_points": body.pop("points", 3),
            "sources": body.pop("sources", ["S1"]),
            **body,
        },
    }


def case(
    cid: str, parent: str, title: str, criterion: str, steps: list[dict[str, str]] | None = None
) -> dict[str, Any]:
    return {
        "id": cid,
        "kind": "test_case",
        "parent_id": parent,
        "title": title,
        "body": {
            "description": f"Checks the acceptance criterion: {criterion}",
            "preconditions": "Signed in.",
            "steps": steps
            if steps is not None
            else [
                {"action": "Sign in as a scout", "expected": "The truss count screen is shown"},
                {"action": "Record a truss count", "expected": "The truss count is saved and listed"},
            ],
        },
    }


def task(tid: str, parent: str, title: str, hours: float) -> dict[str, Any]:
    return {"id": tid, "kind": "task", "parent_id": parent, "title": title, "body": {"estimate_hours": hours}}


def metric(card: Scorecard, key: str) -> Any:
    return next(m for m in card.metrics if m.key == key)


def test_a_title_cut_mid_phrase_is_counted_and_named() -> None:
    """A story title ending on 'under' or with an open bracket is a cut-off title; complete ones are not."""
    items = [story("A", "Record the truss count"), story("B", "Mid-sized growers (2 to 40 hectares under")]
    items.append(story("C", "Plan harvests from spreadsheets and"))
    card = score(items, VISION, COVERED)
    cut = metric(card, "cut_off_titles")
    assert cut.value == 2 and not cut.ok and {o.id for o in cut.offenders} == {"B", "C"}
    assert cut_off_reason("Sign in") is None and cut_off_reason("Log the hours of their") is not None
    assert cut_off_reason("Report of the customer's") is not None and cut_off_reason('Say "hello') is not None


def test_shorten_never_leaves_a_dangling_word() -> None:
    """Shortening a long phrase ends on a word that completes it, and drops a bracket it would cut."""
    assert shorten("Mid-sized commercial growers (2 to 40 hectares under glass) plan their harvests", 6) == (
        "Mid-sized commercial growers"
    )
    assert cut_off_reason(shorten("Send the weekly report to the buyers of each retail chain", 7)) is None
    # a word that needs its noun after an article: the sample's epic once read "… signed before the first"
    assert (
        shorten("Intake forms and consent signed before the first visit", 8)
        == "Intake forms and consent signed"
    )
    assert cut_off_reason("Pay the last") is not None and cut_off_reason("Come first") is None


def test_a_duplicated_test_case_title_lowers_the_distinct_share() -> None:
    """Two test cases whose titles differ only in case and punctuation count as one distinct title."""
    s = story("S", "Record the truss count")
    c = s["body"]["acceptance_criteria"][0]
    items = [
        s,
        case("T1", "S", "Verify that the change is saved", c),
        case("T2", "S", "verify that the change is saved!", c),
    ]
    card = score(items, VISION, COVERED)
    distinct = metric(card, "distinct_test_case_titles")
    assert distinct.value == 0.5 and not distinct.ok and distinct.offenders[0].id == "T2"
    assert normalise("Record it (2)") == normalise("record it")


def test_a_persona_from_the_vision_that_is_not_a_user_fails() -> None:
    """'truss count' is a noun phrase of the vision but not one of its users; 'head grower' is."""
    items = [
        story("A", "Record the truss count", role="truss count"),
        story("B", "Adjust the forecast", role="head grower"),
    ]
    personas = metric(score(items, VISION, COVERED), "personas")
    assert personas.value == 0.5 and [o.id for o in personas.offenders] == ["A"]
    assert "truss count" in personas.offenders[0].problem


def test_then_clauses_shared_across_the_job_fall_below_sixty_percent() -> None:
    """Stories whose criteria all end 'Then the result is saved' have few distinct Then clauses."""
    same = [f"Given x{i}, When they record the count, Then the result is saved" for i in range(3)]
    items = [story(s, f"Record count {s}", criteria=same) for s in "ABC"]
    then = metric(score(items, VISION, COVERED), "distinct_then_clauses")
    assert then.value == round(1 / 9, 4) and not then.ok


def test_criteria_that_do_not_name_the_goal_are_not_specific() -> None:
    """A story whose criteria never mention its goal, or has fewer than 3, is not specific."""
    vague = [f"Given a user, When they act {i}, Then it works {i}" for i in range(3)]
    items = [story("A", "Record the truss count"), story("B", "Adjust the forecast", criteria=vague)]
    specific = metric(score(items, VISION, COVERED), "specific_criteria")
    assert specific.value == 0.5 and specific.offenders[0].id == "B"


def test_test_cases_need_a_criterion_two_steps_and_observable_results() -> None:
    """A case tracing to a criterion with two observable steps passes; one step, 'OK' or no criterion fail."""
    s = story("S", "Record the truss count")
    c = s["body"]["acceptance_criteria"][0]
    items = [
        s,
        case("good", "S", "Record a truss count: main flow", c),
        case("short", "S", "Record: one step", c, [{"action": "Record", "expected": "The count is saved"}]),
        case(
            "vague",
            "S",
            "Record: vague",
            c,
            [{"action": "a", "expected": "OK"}, {"action": "b", "expected": "works"}],
        ),
        case(
            "lost",
            "S",
            "Something else",
            "Given weather, When it rains, Then umbrellas open",
            [
                {"action": "Wait for rain", "expected": "Umbrellas open everywhere"},
                {"action": "Look up", "expected": "The sky is grey today"},
            ],
        ),
    ]
    traced = metric(score(items, VISION, COVERED), "traced_test_cases")
    assert traced.value == 0.25 and {o.id for o in traced.offenders} == {"short", "vague", "lost"}


def test_points_in_rotation_do_not_follow_size() -> None:
    """Points that fall as stories grow (a rotation) fail; points that grow with size pass."""

    def sized(sid: str, n: int, points: int) -> dict[str, Any]:
        crit = [
            f"Given step {i}, When they record the truss count, Then count {sid}{i} is saved"
            for i in range(n)
        ]
        return story(sid, f"Record the truss count {sid}", criteria=crit, points=points)

    growing = [sized("A", 3, 2), sized("B", 4, 3), sized("C", 5, 5)]
    rotating = [sized("A", 3, 8), sized("B", 4, 5), sized("C", 5, 2)]
    assert metric(score(growing, VISION, COVERED), "points_follow_size").ok
    bad = metric(score(rotating, VISION, COVERED), "points_follow_size")
    assert bad.value == 0 and not bad.ok


def test_task_hours_must_add_up_to_the_points() -> None:
    """Tasks of 1 hour in all for an 8-point story are short of 1-8 hours per point; 24 hours are fine."""
    items = [
        story("A", "Record the truss count", points=8),
        task("t1", "A", "Build the form", 0.5),
        task("t2", "A", "Test the form", 0.5),
        story("B", "Adjust the forecast", points=3),
        task("t3", "B", "Build the service", 12),
        task("t4", "B", "Test the service", 12),
    ]
    hours = metric(score(items, VISION, COVERED), "hours_match_points")
    assert hours.value == 0.5 and hours.offenders[0].id == "A"


def test_coverage_lists_the_sentences_no_story_cites() -> None:
    """Coverage is the traceability share, and its offenders are the uncovered sentences."""
    report = {
        "sentences": 2,
        "covered": 1,
        "uncovered": [{"id": "S2", "section": "constraints", "text": "Works offline"}],
    }
    card = score([story("A", "Record the truss count")], VISION, report)
    coverage = metric(card, "coverage")
    assert coverage.value == 0.5 and coverage.offenders[0].id == "S2" and not card.ok
    assert "coverage=50% ✗" in card.line() and "short of target" in card.line()
