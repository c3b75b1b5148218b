"""The backlog models: story format, Given/When/Then, Fibonacci points, task and test case rules."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from stages import models
from stages.models import EpicOut, StoryOut, TaskOut

STORY: dict[str, Any] = {
    "title": "Borrower books a drill",
    "description": "Booking flow.",
    "sources": ["S1"],
    "user_story": "As a borrower, I want to book a drill for Saturday, so that I can hang my shelves",
    "acceptance_criteria": [
        "Given a free drill, When I book Saturday, Then the drill is reserved for me",
        "Given a booked drill, When another borrower tries Saturday, Then they see it is taken",
        "Given my booking, When I cancel a day ahead, Then my deposit is returned",
    ],
    "story_points": 3,
    "priority": 2,
}


def test_valid_story_is_accepted() -> None:
    """A story in the role/goal/benefit form with three GWT criteria and Fibonacci points validates."""
    assert StoryOut.model_validate(STORY).story_points == 3


@pytest.mark.parametrize(
    "user_story",
    ["I want to book a drill", "As a borrower I want a drill", "As a borrower, I want a drill", ""],
)
def test_story_format_is_enforced(user_story: str) -> None:
    """A user story missing the role, the goal or the benefit is rejected with the expected form."""
    with pytest.raises(ValidationError, match="As a <role>, I want <goal>, so that <benefit>"):
        StoryOut.model_validate({**STORY, "user_story": user_story})


def test_acceptance_criteria_must_be_given_when_then() -> None:
    """A criterion that is not Given/When/Then is rejected by its index."""
    criteria = [*STORY["acceptance_criteria"][:2], "The drill is reserved"]
    with pytest.raises(
        ValidationError, match=r"criteria \[2\] must read 'Given \.\.\. When \.\.\. Then \.\.\.'"
    ):
        StoryOut.model_validate({**STORY, "acceptance_criteria": criteria})


def test_at_least_three_acceptance_criteria() -> None:
    """Fewer than three criteria are rejected."""
    with pytest.raises(ValidationError, match="at least 3"):
        StoryOut.model_validate({**STORY, "acceptance_criteria": STORY["acceptance_criteria"][:2]})


@pytest.mark.parametrize(
    ("points", "ok"), [(1, True), (13, True), (21, False), (4, False), (0, False), (34, False)]
)
def test_story_points_are_fibonacci(points: int, ok: bool) -> None:
    """Story points must be on the Fibonacci scale 1..13 (the values the request schema allows)."""
    data = {**STORY, "story_points": points}
    if ok:
        assert StoryOut.model_validate(data).story_points == points
    else:
        with pytest.raises(ValidationError, match="must be one of"):
            StoryOut.model_validate(data)


def test_every_item_needs_sources_and_no_extra_keys() -> None:
    """Items must cite at least one source sentence and carry no unknown keys."""
    epic = {"title": "Bookings", "description": "d", "sources": ["S1"], "priority": 1, "business_value": 50}
    assert EpicOut.model_validate(epic).sources == ["S1"]
    with pytest.raises(ValidationError, match="sources"):
        EpicOut.model_validate({**epic, "sources": []})
    with pytest.raises(ValidationError, match="colour"):
        EpicOut.model_validate({**epic, "colour": "red"})


def test_task_estimate_and_activity() -> None:
    """A task's estimate is in (0, 40] hours and its activity one of the known ones."""
    task = {
        "title": "Build the booking API",
        "description": "d",
        "sources": ["S1"],
        "estimate_hours": 6,
        "activity": "Development",
    }
    assert TaskOut.model_validate(task).estimate_hours == 6
    for bad in ({"estimate_hours": 0}, {"estimate_hours": 41}, {"activity": "Coding"}):
        with pytest.raises(ValidationError):
            TaskOut.model_validate({**task, **bad})


def test_test_case_needs_two_steps_with_action_and_expected() -> None:
    """A test case needs preconditions and at least two steps, each with an action and an expected result."""
    step = {"action": "Open the tool page", "expected": "The calendar shows free slots"}
    case = {
        "title": "Book a free slot",
        "description": "d",
        "sources": ["S1"],
        "preconditions": "A listed drill",
        "steps": [step, step],
        "priority": 2,
    }
    assert len(models.TestCaseOut.model_validate(case).steps) == 2
    with pytest.raises(ValidationError, match="at least 2"):
        models.TestCaseOut.model_validate({**case, "steps": [step]})
    with pytest.raises(ValidationError, match="expected"):
        models.TestCaseOut.model_validate({**case, "steps": [step, {"action": "Click"}]})


def test_title_length_bounds() -> None:
    """Titles are 3..255 characters after stripping whitespace."""
    epic = {"title": "  ab  ", "description": "d", "sources": ["S1"], "priority": 1, "business_value": 5}
    with pytest.raises(ValidationError, match="at least 3"):
        EpicOut.model_validate(epic)
    with pytest.raises(ValidationError, match="at most 255"):
        EpicOut.model_validate({**epic, "title": "x" * 256})
