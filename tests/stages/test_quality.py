"""Quality checks: similarity, near-duplicates across the whole job, the traceability report, and a
near-duplicate answer regenerating only its own call, within bounds."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from service.settings import Settings
from stages.quality import near_duplicates, similarity, traceability
from tests.conftest import FakeServer, call_key_of, run_job
from tests.fakes.openai_server import default_responder

StartFake = Callable[..., Awaitable[FakeServer]]


def test_similarity_ignores_case_punctuation_and_stop_words() -> None:
    """The same wording scores 1.0 whatever the case, punctuation or stop words; unrelated text ~0."""
    assert similarity("Book a drill for Saturday!", "book the DRILL for saturday") == 1.0
    assert similarity("Book a drill for Saturday", "Export monthly sales reports") == 0.0
    assert similarity("", "anything") == 0.0


def test_near_duplicates_are_found_across_the_job() -> None:
    """A new story repeating one under another feature is reported with both titles; distinct ones pass."""
    existing = [("Book a drill", "As a borrower, I want to book a drill for Saturday, so that I can build")]
    new = [
        ("Reserve a drill", "As a borrower, I want to book a drill for Saturday, so that I can build"),
        ("Rate an owner", "As a borrower, I want to rate the owner after returning, so that others trust"),
    ]
    problems = near_duplicates(new, existing, threshold=0.6)
    assert len(problems) == 1
    assert problems[0].startswith("item 0 'Reserve a drill' nearly repeats 'Book a drill'")


def test_traceability_lists_uncovered_sentences() -> None:
    """The report counts covered sentences and lists every sentence no story cites, with its text."""
    sentences = [{"id": f"S{i}", "section": "vision", "text": f"Sentence {i}."} for i in (1, 2, 3)]
    report = traceability(sentences, [{"sources": ["S1"]}, {"sources": ["S1", "S3"]}])
    assert (report["sentences"], report["covered"]) == (3, 2)
    assert report["uncovered"] == [{"id": "S2", "section": "vision", "text": "Sentence 2."}]
    assert report["stories_per_sentence"] == {"S1": 2, "S3": 1}


def same_stories(body: dict[str, Any]) -> dict[str, Any]:
    """Every stories call answers the very same stories, whatever the feature; other stages as usual."""
    value = default_responder(body)
    if "stories" not in value:
        return value
    story = {
        "title": "Borrower books a drill",
        "description": "Booking.",
        "sources": ["S1"],
        "user_story": "As a borrower, I want to book a drill for Saturday, so that I can hang my shelves",
        "acceptance_criteria": ["Given a free drill, When I book it, Then it is reserved"] * 3,
        "story_points": 3,
        "priority": 2,
    }
    return {"stories": [story]}


async def test_near_duplicate_answer_regenerates_only_its_call_within_bounds(
    fake_llm: StartFake, settings_factory: Callable[..., Settings]
) -> None:
    """Stories repeating stories elsewhere in the job get one repair turn naming the repeat; after
    max_regenerations the call is accepted, and no other call is repeated."""
    server = await fake_llm(responder=same_stories)
    limits = {"max_epics": 1, "max_features_per_epic": 3, "max_stories_per_feature": 1}
    settings = server.settings_for(
        settings_factory,
        llm={"max_concurrency": 1},
        workflow={"limits": limits, "quality": {"max_regenerations": 1}},
    )
    result = await run_job(settings)
    assert result.job.status == "completed"
    counts = Counter(call_key_of(body) for _, body in server.fake.requests)
    stories_calls = sorted(n for (stage, _), n in counts.items() if stage == "stories")
    assert stories_calls == [1, 2, 2]  # the first is new; the other two are regenerated once, then accepted
    assert all(n == 1 for (stage, _), n in counts.items() if stage != "stories")
    repairs = [
        body["messages"][-1]["content"]
        for _, body in server.fake.requests
        if body["messages"][-1]["content"].startswith("Your answer was not accepted")
    ]
    assert len(repairs) == 2 and all("nearly repeats 'Borrower books a drill'" in r for r in repairs)
