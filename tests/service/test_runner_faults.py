"""The runner against the fake OpenAI-compatible server on loopback: scripted faults, bounded retries
per call, failed calls recorded with their subtree skipped, token usage per call and per job."""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from service.settings import Settings
from tests.conftest import CallFaults, FakeServer, call_key_of, run_job

StartFake = Callable[..., Awaitable[FakeServer]]
Factory = Callable[..., Settings]
# 2 epics × 2 features × 2 stories, each story with tasks and test cases: 1 + 2 + 4 + 8 × 2 calls.
CALLS = 23


def per_call(fake: Any) -> Counter[tuple[str, str]]:
    return Counter(call_key_of(body) for _, body in fake.requests)


def user_messages(body: dict[str, Any]) -> list[str]:
    return [m["content"] for m in body["messages"] if m["role"] == "user"]


async def test_clean_run_makes_one_request_per_call(fake_llm: StartFake, settings_factory: Factory) -> None:
    """Without faults every stage call is one request, and the job completes with the full tree."""
    server = await fake_llm()
    result = await run_job(server.settings_for(settings_factory))
    assert result.job.status == "completed"
    assert len(server.fake.requests) == CALLS == len(result.calls)
    assert set(per_call(server.fake).values()) == {1}
    assert [len(result.of(k)) for k in ("epic", "feature", "story", "task", "test_case")] == [2, 4, 8, 16, 16]


async def test_fenced_and_prose_answers_are_accepted(fake_llm: StartFake, settings_factory: Factory) -> None:
    """JSON in a code fence or wrapped in prose is accepted on the first attempt."""
    server = await fake_llm(script=["fenced", "prose", "fenced"])
    result = await run_job(server.settings_for(settings_factory))
    assert result.job.status == "completed"
    assert len(server.fake.requests) == CALLS
    assert all(c.attempts == 1 for c in result.calls)


async def test_invalid_json_gets_a_repair_turn_with_the_errors(
    fake_llm: StartFake, settings_factory: Factory
) -> None:
    """Invalid JSON is answered with a repair turn that carries the validation errors to the model."""
    server = await fake_llm(script=["invalid_json"])
    result = await run_job(server.settings_for(settings_factory))
    assert result.job.status == "completed"
    first, second = (body for _, body in server.fake.requests[:2])
    assert call_key_of(first) == call_key_of(second) == ("epics", "(vision)")
    repair = user_messages(second)[-1]
    assert repair.startswith("Your answer was not accepted:")
    assert "JSON" in repair or "json" in repair
    assert second["messages"][-2] == {"role": "assistant", "content": "{'items': [oops, this is not JSON}"}
    assert result.call("epics:")[0].attempts == 2
    assert len(server.fake.requests) == CALLS + 1


async def test_wrong_schema_is_repaired_naming_the_missing_field(
    fake_llm: StartFake, settings_factory: Factory
) -> None:
    """An answer missing a required field gets a repair turn naming the field; the job completes."""
    server = await fake_llm(script=["wrong_schema"])
    result = await run_job(server.settings_for(settings_factory))
    assert result.job.status == "completed"
    repair = user_messages(server.fake.requests[1][1])[-1]
    assert "epics[0].title: Field required" in repair
    assert len(server.fake.requests) == CALLS + 1


async def test_truncated_answer_is_retried_for_fewer_items_and_never_accepted(
    fake_llm: StartFake, settings_factory: Factory
) -> None:
    """finish_reason=length is retried asking for fewer items; the epics come from the second answer."""
    server = await fake_llm(script=["truncated"])
    settings = server.settings_for(settings_factory, workflow={"limits": {"max_epics": 4}})
    result = await run_job(settings)
    assert result.job.status == "completed"
    first, second = (body for _, body in server.fake.requests[:2])
    assert call_key_of(first) == call_key_of(second)

    def asked(body: dict[str, Any]) -> int:
        schema = body["response_format"]["json_schema"]["schema"]
        return int(schema["properties"]["epics"]["maxItems"])

    assert (asked(first), asked(second)) == (4, 2)
    assert "at most 2 epics" in user_messages(second)[0]
    assert len(result.of("epic")) == 2  # the second answer's two epics, nothing kept from the cut-off one
    assert result.call("epics:")[0].attempts == 2


async def test_429_retry_after_is_honoured_before_any_new_request(
    fake_llm: StartFake, settings_factory: Factory
) -> None:
    """After a 429 with Retry-After no request reaches the server before its deadline; the job completes."""
    server = await fake_llm(script=[("sleep", 0.0)] * 3 + [("429", 0.15), ("sleep", 0.0), ("429", 0.05)])
    settings = server.settings_for(settings_factory, llm={"max_concurrency": 1, "max_attempts": 1})
    result = await run_job(settings)
    assert result.job.status == "completed"
    assert len(server.fake.retry_deadlines) == 2
    assert server.fake.early_requests == []
    arrivals = [at for at, _ in server.fake.requests]
    # One request at a time: requests 3 and 5 drew the 429s; the next request waits for each deadline.
    assert arrivals[4] >= server.fake.retry_deadlines[0] - 0.001
    assert arrivals[6] >= server.fake.retry_deadlines[1] - 0.001
    assert sum(per_call(server.fake).values()) == CALLS + 2 and len(per_call(server.fake)) == CALLS
    assert all(c.status == "done" for c in result.calls)  # a 429 is pacing, not a failed attempt
    assert len(server.fake.requests) == CALLS + 2


async def test_429_with_many_calls_in_flight_pauses_everyone(
    fake_llm: StartFake, settings_factory: Factory
) -> None:
    """A 429 hitting one of many concurrent calls pauses the whole provider until its deadline."""
    server = await fake_llm(latency=0.01, script=[("sleep", 0.0)] * 8 + [("429", 0.2)])
    result = await run_job(server.settings_for(settings_factory, llm={"max_concurrency": 8}))
    assert result.job.status == "completed"
    (deadline,) = server.fake.retry_deadlines
    announced = server.fake.requests[8][0]
    # Requests sent before the client read the 429 may still arrive just after it; none later.
    late_starters = [at for at, _ in server.fake.requests if announced + 0.02 < at < deadline - 0.002]
    assert late_starters == []
    assert server.fake.early_requests == [] or all(
        at < announced + 0.02 for at, _ in server.fake.early_requests
    )
    assert max(at for at, _ in server.fake.requests) >= deadline
    assert len(server.fake.requests) == CALLS + 1


async def test_server_errors_retry_only_the_failing_call(
    fake_llm: StartFake, settings_factory: Factory
) -> None:
    """Two 500s on one stories call repeat only that call, never its stage; the job completes."""
    faults = CallFaults("stories", times=2)
    server = await fake_llm(middlewares=[faults])
    result = await run_job(server.settings_for(settings_factory))
    assert result.job.status == "completed"
    counts = Counter(faults.seen)
    assert len(counts) == CALLS
    assert faults.target is not None and counts[faults.target] == 3
    assert sorted(counts.values()) == [1] * (CALLS - 1) + [3]
    assert sorted(c.attempts for c in result.calls) == [1] * (CALLS - 1) + [3]


async def test_a_call_that_keeps_failing_is_recorded_and_its_subtree_skipped(
    fake_llm: StartFake, settings_factory: Factory
) -> None:
    """A call failing on every attempt is stored as failed with its error; its children never run and
    the job ends completed_with_errors while every other call completes."""
    faults = CallFaults("features", times=None)
    server = await fake_llm(middlewares=[faults])
    result = await run_job(server.settings_for(settings_factory, llm={"max_attempts": 3}))
    assert result.job.status == "completed_with_errors"
    (failed,) = [c for c in result.calls if c.status == "failed"]
    assert failed.call_key.startswith("features:")
    assert failed.error is not None and "HTTP 500" in failed.error and "upstream exploded" in failed.error
    assert (
        faults.target is not None and Counter(faults.seen)[faults.target] == 3
    )  # bounded: max_attempts, then given up
    assert [f for f in result.of("feature") if f.parent_id == failed.parent_id] == []
    assert (len(result.of("feature")), len(result.of("story")), len(result.of("task"))) == (2, 4, 8)
    assert sum(c.status == "done" for c in result.calls) == 1 + 1 + 2 + 4 * 2
    assert failed.call_key in result.job.metadata["failed_calls"]


async def test_token_usage_is_recorded_per_call_and_summed_per_job(
    fake_llm: StartFake, settings_factory: Factory
) -> None:
    """Every call row keeps the usage the server reported; their sum is the server's total."""
    server = await fake_llm()
    result = await run_job(server.settings_for(settings_factory))
    assert all(c.prompt_tokens > 0 and c.completion_tokens > 0 for c in result.calls)
    assert sum(c.prompt_tokens for c in result.calls) == server.fake.usage["prompt_tokens"]
    assert sum(c.completion_tokens for c in result.calls) == server.fake.usage["completion_tokens"]
    assert all(c.latency_ms > 0 and len(c.prompt_hash) == 16 for c in result.calls)


async def test_more_items_than_the_limit_keeps_exactly_the_limit(
    fake_llm: StartFake, settings_factory: Factory
) -> None:
    """A model that answers with more items than asked for is cut to exactly the limit at every level."""
    from tests.fakes.openai_server import default_responder

    def generous(body: dict[str, Any]) -> dict[str, Any]:
        value = default_responder(body)
        (key,) = value
        return {key: value[key] * 3}  # same items, three times over (titles get numbered unique)

    server = await fake_llm(responder=generous)
    result = await run_job(server.settings_for(settings_factory))
    assert result.job.status == "completed"
    assert [len(result.of(k)) for k in ("epic", "feature", "story", "task", "test_case")] == [2, 4, 8, 16, 16]
    for kind in ("epic", "feature", "story"):
        by_parent: dict[str | None, list[str]] = {}
        for item in result.of(kind):
            by_parent.setdefault(item.parent_id, []).append(item.title.casefold())
        assert all(len(set(titles)) == len(titles) for titles in by_parent.values())
