"""The same quality gate for LLM answers: a story or test-case answer with a cut-off title, a title
the job already has, or a persona that is not a user gets one regeneration listing the problems."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from service.settings import Settings
from stages.gate import hard_problems
from tests.conftest import FakeServer, call_key_of, run_job
from tests.fakes.openai_server import default_responder

StartFake = Callable[..., Awaitable[FakeServer]]
Factory = Callable[..., Settings]
VISION: dict[str, Any] = {
    "target_users": ["Tool owners", "Borrowers"],
    "sentences": [{"id": "S1", "section": "vision", "text": "Owners list tools."}],
}
LIMITS = {
    "max_epics": 1,
    "max_features_per_epic": 1,
    "max_stories_per_feature": 2,
    "max_tasks_per_story": 1,
    "max_test_cases_per_story": 1,
}


def test_hard_problems_name_each_failing_check() -> None:
    """A cut-off title, a title already in the job and a persona that is not a user each give a problem."""
    bodies = [
        {"title": "List a tool with", "user_story": "As a tool owner, I want to list, so that I lend"},
        {"title": "Book a tool", "user_story": "As a truss count, I want to book, so that I borrow"},
    ]
    problems = hard_problems("story", bodies, ["book a tool!"], VISION)
    assert len(problems) == 3
    assert "cut off" in problems[0] and "repeats a title" in problems[1] and "'truss count'" in problems[2]
    renamed = [bodies[0], {**bodies[1], "title": "Return a tool"}]
    assert hard_problems("story", renamed, [], VISION)[1:] == [problems[2]]
    assert hard_problems("task", bodies, [], VISION) == []


async def test_a_failing_story_answer_is_regenerated_once_with_the_problems(
    fake_llm: StartFake, settings_factory: Factory
) -> None:
    """The fake first answers stories with a cut-off title and a persona that is not a user; the runner
    asks again once, listing both problems, and keeps the corrected answer."""
    repairs: list[str] = []

    def responder(body: dict[str, Any]) -> dict[str, Any]:
        value = default_responder(body)
        stage, _ = call_key_of(body)
        if stage != "stories":
            return value
        asked_again = [m["content"] for m in body["messages"] if "was not accepted" in str(m.get("content"))]
        repairs.extend(asked_again)
        out = []
        for i, item in enumerate(value["stories"]):
            good = bool(asked_again)
            out.append(
                {
                    **item,
                    "title": f"Lend tool number {i}" if good else f"Lend tool {i} to the",
                    "user_story": ("As a borrower" if good else "As a truss count")
                    + ", I want to lend a tool, so that neighbours share",
                }
            )
        return {"stories": out}

    server = await fake_llm(responder=responder)
    result = await run_job(server.settings_for(settings_factory, workflow={"limits": LIMITS}))
    assert result.job.status == "completed"
    assert len(repairs) == 1, repairs
    assert "is cut off" in repairs[0] and "'truss count' is not a user" in repairs[0]
    stories = result.of("story")
    assert [s.title for s in stories] == ["Lend tool number 0", "Lend tool number 1"]
    (call,) = result.call("stories:")
    assert call.attempts == 2
