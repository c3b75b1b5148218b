"""Two instances (real services, one PostgreSQL database) in one process: progress, take-over, pacing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from outbox.records import EventRow
from service.composition import build_services
from service.requests import JobRequest
from service.settings import Settings
from tests.conftest import VISION, FakeServer
from web.snapshots import progress_snapshot

FAST = {"lease_seconds": 1.5, "poll_seconds": 0.05}  # a lease outlasts a busy CI machine's hiccups


def _settings(make: Callable[..., Settings], pg_url: str, **sections: dict[str, Any]) -> Settings:
    return make(database={"url": pg_url, **FAST}, **sections)


async def _events_until_final(sub: Any) -> list[EventRow]:
    seen: list[EventRow] = []
    async with asyncio.timeout(30):
        while (ev := await sub.get()) is not None:
            seen.append(ev)
            if ev.type == "final":
                return seen
    raise AssertionError("subscription ended before the final event")


async def test_a_subscriber_on_one_instance_sees_every_event_of_a_job_running_on_another(
    settings_factory: Callable[..., Settings], pg_url: str
) -> None:
    """A job submitted to and run by instance A is followed on instance B's broadcaster: every event from
    the first one B saw to the final one, in seq order, as committed; both answer the same progress ETag."""
    settings = _settings(settings_factory, pg_url)
    async with build_services(settings, {}) as a, build_services(settings, {}) as b:
        job_id = await a.jobs.submit(JobRequest(vision=VISION))
        sub = b.broadcaster.subscribe(job_id)
        got = await _events_until_final(sub)
        assert job_id in a.jobs.running() or (await a.jobs.wait(job_id)).status == "completed"
        assert job_id not in b.jobs.running()
        committed = await b.store.events_after(job_id, 0)
        seqs = [e.seq for e in got]
        assert {e.seq for e in committed if e.seq >= seqs[0]} == set(seqs)  # nothing missed
        assert seqs == sorted(seqs)  # read from the table in seq order; an SSE stream drops repeats
        assert [e.payload for e in got] == [e.payload for e in committed if e.seq in set(seqs)]
        job = await b.store.get_job(job_id)
        assert job is not None and job.status == "completed"
        on_a, on_b = await progress_snapshot(a, job), await progress_snapshot(b, job)
        assert on_a.etag == on_b.etag and on_a.progress == on_b.progress == 100.0


async def test_a_job_left_by_a_lost_instance_is_finished_by_another_without_repeating_calls(
    settings_factory: Callable[..., Settings], pg_url: str
) -> None:
    """Instance A stops mid-job without releasing its lease (as if killed); B takes the job over once
    the lease runs out and completes it, and every LLM call is recorded exactly once."""
    settings = _settings(settings_factory, pg_url)
    async with build_services(settings, {}) as b:
        async with build_services(settings, {}) as a:
            job_id = await a.jobs.submit(JobRequest(vision=VISION))
            async with asyncio.timeout(20):
                while len(await a.store.calls(job_id)) < 3:  # noqa: ASYNC110 (polls the database or another process)
                    await asyncio.sleep(0.01)
            assert job_id not in b.jobs.running()
            a.store.forget_job(job_id)  # A "dies": its lease is neither renewed nor released
            a.jobs.drop(job_id)
        started = time.monotonic()
        async with asyncio.timeout(30):
            while (job := await b.store.get_job(job_id)) is None or job.status != "completed":  # noqa: ASYNC110 (polls the database or another process)
                await asyncio.sleep(0.02)
        assert time.monotonic() - started < 15
        calls = await b.store.calls(job_id)
        assert len({c.call_key for c in calls}) == len(calls)
        items = await b.store.items(job_id)
        assert len({(i.call_key, i.kind, i.title) for i in items}) == len(items)  # no call's items twice


async def test_a_429_seen_by_one_instance_delays_the_next_request_of_the_other(
    settings_factory: Callable[..., Settings], pg_url: str, fake_llm: Callable[..., Awaitable[FakeServer]]
) -> None:
    """The fake LLM answers instance A's first request 429 with Retry-After 0.5 s; instance B learns the
    pause through the database, and B's first request of its own job reaches the fake only after the
    deadline A was given (no request arrives early)."""
    server = await fake_llm(script=[("429", 0.5)])
    settings = server.settings_for(settings_factory, database={"url": pg_url, **FAST})
    async with build_services(settings, {}) as a, build_services(settings, {}) as b:
        async with asyncio.timeout(10):
            while not _listening(a) or not _listening(b):  # noqa: ASYNC110 (a connection, no event)
                await asyncio.sleep(0.01)
            await a.jobs.submit(JobRequest(vision=VISION))
            while not server.fake.retry_deadlines:  # noqa: ASYNC110 (another server's state)
                await asyncio.sleep(0.005)
            deadline = server.fake.retry_deadlines[0]
            while b.llm_limiter.paused_until < deadline - 0.1:  # noqa: ASYNC110 (the pause arrives by NOTIFY)
                await asyncio.sleep(0.005)
            seen = len(server.fake.requests)
            await b.jobs.wait(await b.jobs.submit(JobRequest(vision=VISION)))
        b_first = next(at for at, _ in server.fake.requests[seen:])
        assert b_first >= deadline - server.fake.early_grace
        assert server.fake.early_requests == []


def _listening(services: Any) -> bool:
    cluster = services.cluster
    return bool(cluster is not None and cluster.listening)
