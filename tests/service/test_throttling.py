"""Throttling is pacing, never failure: against a provider with a hidden concurrency cap a job completes
whatever its 429s say about when to come back, and free-text citations never fail a job."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from service.settings import Settings
from tests.conftest import FakeServer, run_job
from tests.fakes.openai_server import free_text_responder

Factory = Callable[..., Settings]
CAP, LATENCY = 6, 0.1  # the provider serves 6 requests at a time, 100 ms each; the 7th draws a 429
LIMITS = {
    "max_epics": 2,
    "max_features_per_epic": 3,
    "max_stories_per_feature": 3,
    "max_tasks_per_story": 2,
    "max_test_cases_per_story": 2,
}
CALLS = 1 + 2 + 6 + 18 + 18


@pytest.mark.parametrize("retry_after", [1.0, 0.0, None], ids=["retry-after-1", "retry-after-0", "bare-429"])
async def test_a_hidden_cap_is_found_with_few_throttles_and_the_job_completes(
    fake_llm: Any, settings_factory: Factory, retry_after: float | None
) -> None:
    """Starting from a ceiling of 32 against a cap of 6, the job completes with every call done, under
    20% of requests throttled overall and 5% after the first second, none before an announced deadline."""
    server: FakeServer = await fake_llm(latency=LATENCY, throttle_above=CAP, throttle_retry_after=retry_after)
    settings = server.settings_for(
        settings_factory, llm={"max_concurrency": 32, "max_attempts": 2}, workflow={"limits": LIMITS}
    )
    result = await run_job(settings)
    assert result.job.status == "completed", result.job.error
    assert len(result.calls) == CALLS and all(c.status == "done" for c in result.calls)
    fake = server.fake
    start = fake.requests[0][0]
    overall = fake.throttled / len(fake.requests)
    later = [at for at in fake.throttle_log if at >= start + 1.0]
    later_total = [at for at, _ in fake.requests if at >= start + 1.0]
    assert overall < 0.20, (fake.throttled, len(fake.requests))
    assert len(later) <= 0.05 * max(1, len(later_total)), (len(later), len(later_total))
    assert fake.early_requests == []
    assert fake.max_in_flight <= 32
    assert result.job.metadata["llm"]["requests"] == len(fake.requests)


async def test_free_text_citations_are_repaired_and_the_job_completes(
    fake_llm: Any, settings_factory: Factory
) -> None:
    """A server that writes free text into every ``sources`` array still yields a completed job whose
    every citation names a real vision sentence, with the repairs counted in the job's metadata."""
    server: FakeServer = await fake_llm(responder=free_text_responder)
    for mode in ("json_schema", "prompt"):
        settings = server.settings_for(settings_factory, llm={"structured_output": mode})
        result = await run_job(settings)
        assert result.job.status == "completed", (mode, result.job.error)
        vision_ids = {f"S{i}" for i in range(1, 40)}
        generated = [i for i in result.items if i.kind in ("epic", "feature", "story", "task", "test_case")]
        assert generated and all(set(i.body["sources"]) <= vision_ids for i in generated)
        assert all(i.body["sources"] for i in generated)
        assert all(i.title == i.title.strip() for i in generated)
        repairs = result.job.metadata["llm"]["repairs"]
        assert repairs["citations_dropped"] >= len(generated) and repairs["whitespace_trimmed"] >= 1


async def test_a_failed_job_counts_every_request_and_names_the_setting(
    fake_llm: Any, settings_factory: Factory
) -> None:
    """A model answering prose in prompt mode fails the job, whose error names structured_output and
    whose metadata counts the requests it really made (not 0 calls)."""
    server: FakeServer = await fake_llm(responder=lambda body: "Sure! Here are some great epics for you.")
    settings = server.settings_for(settings_factory, llm={"structured_output": "prompt", "max_attempts": 2})
    result = await run_job(settings)
    assert result.job.status == "failed"
    assert "structured_output" in (result.job.error or "")
    assert result.job.metadata["llm"]["requests"] == len(server.fake.requests) == 2
    (call,) = result.calls
    assert (call.status, call.attempts) == ("failed", 2)
