"""The runner schedules a DAG, not stage barriers: children land under their own parent whatever the
concurrency, a slow call holds back only its own subtree, and cancel leaves only whole calls."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from outbox.records import ItemRow
from service.composition import Services
from service.settings import Settings
from tests.conftest import FakeServer, call_key_of, parent_title, run_job
from tests.fakes.openai_server import default_responder

StartFake = Callable[..., Awaitable[FakeServer]]
Factory = Callable[..., Settings]


def echo_parent(body: dict[str, Any]) -> dict[str, Any]:
    """Schema-valid answer whose every description names the parent the prompt asked about."""
    value = default_responder(body)
    parent = parent_title(body)
    return {
        key: [{**item, "description": f"Child of <{parent}>. {item['description']}"} for item in items]
        for key, items in value.items()
    }


async def test_every_child_lands_under_its_own_parent(fake_llm: StartFake, settings_factory: Factory) -> None:
    """With 6 epics and concurrency 2, every feature, story and task is stored under the item its
    prompt described (the old system's late-binding bug put features under the wrong epic)."""
    server = await fake_llm(responder=echo_parent)
    limits = {
        "max_epics": 6,
        "max_features_per_epic": 3,
        "max_stories_per_feature": 1,
        "max_tasks_per_story": 1,
        "max_test_cases_per_story": 1,
    }
    settings = server.settings_for(settings_factory, llm={"max_concurrency": 2}, workflow={"limits": limits})
    result = await run_job(settings)
    assert result.job.status == "completed"
    by_id = {i.id: i for i in result.items}
    assert len(result.of("epic")) == 6 and len(result.of("feature")) == 18
    for kind in ("feature", "story", "task", "test_case"):
        for item in result.of(kind):
            parent = by_id[item.parent_id or ""]
            assert item.body["description"].startswith(f"Child of <{parent.title}>."), (kind, item.title)
    features_per_epic = {
        e.id: sum(f.parent_id == e.id for f in result.of("feature")) for e in result.of("epic")
    }
    assert set(features_per_epic.values()) == {3}


class SlowFirst:
    """Middleware: delays the first ``stage`` call by ``seconds``; logs (stage, parent, start, end)."""

    __middleware_version__ = 1

    def __init__(self, stage: str, seconds: float) -> None:
        self.stage, self.seconds = stage, seconds
        self.slow: tuple[str, str] | None = None
        self.log: list[tuple[str, str, float, float]] = []

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.json()
        key, started = call_key_of(body), time.monotonic()
        if self.slow is None and key[0] == self.stage:
            self.slow = key
        if key == self.slow:
            await asyncio.sleep(self.seconds)
        try:
            return await handler(request)
        finally:
            self.log.append((key[0], key[1], started, time.monotonic()))


async def test_a_slow_call_holds_back_only_its_own_subtree(
    fake_llm: StartFake, settings_factory: Factory
) -> None:
    """While one epic's features call is slow, stories and tasks of the other epics already run."""
    slow = SlowFirst("features", 1.0)  # long enough for the other epics to get going on a busy machine
    server = await fake_llm(latency=0.005, middlewares=[slow])
    limits = {"max_epics": 3, "max_features_per_epic": 2, "max_stories_per_feature": 2}
    result = await run_job(server.settings_for(settings_factory, workflow={"limits": limits}))
    assert result.job.status == "completed"
    assert slow.slow is not None
    slow_epic = slow.slow[1].splitlines()[0]  # "Epic: <title>"
    (slow_end,) = [end for stage, ctx, _, end in slow.log if (stage, ctx) == slow.slow]
    others = [(stage, start) for stage, ctx, start, _ in slow.log if not ctx.startswith(slow_epic)]
    assert [s for s, start in others if s == "stories" and start < slow_end]
    assert [s for s, start in others if s in ("tasks", "test_cases") and start < slow_end]
    assert len(result.of("feature")) == 6 and len(result.of("story")) == 12


async def test_cancel_stops_new_calls_and_keeps_only_whole_calls(
    fake_llm: StartFake, settings_factory: Factory
) -> None:
    """Cancelling mid-job ends it cancelled, sends no further request, and every stored item belongs to
    a committed call that stored all of its items."""
    server = await fake_llm(latency=0.02)
    seen: dict[str, int] = {}

    async def cancel_mid_job(services: Services, job_id: str) -> None:
        while len(await services.store.calls(job_id)) < 15:  # noqa: ASYNC110 - polling the real store is the point
            await asyncio.sleep(0.005)
        job = await services.jobs.cancel(job_id)
        assert job.status == "cancelled"
        seen["requests"] = len(server.fake.requests)
        seen["calls"] = len(await services.store.calls(job_id))
        await asyncio.sleep(0.1)  # five latencies: anything still running would have landed
        seen["calls_later"] = len(await services.store.calls(job_id))

    limits = {"max_epics": 3, "max_features_per_epic": 3, "max_stories_per_feature": 3}
    settings = server.settings_for(settings_factory, llm={"max_concurrency": 3}, workflow={"limits": limits})
    result = await run_job(settings, during=cancel_mid_job)
    assert result.job.status == "cancelled"
    assert len(server.fake.requests) == seen["requests"]
    assert seen["calls"] == seen["calls_later"] == len(result.calls) < 1 + 3 + 9 + 27 * 2
    done = {c.call_key for c in result.calls if c.status == "done"}
    assert len(done) == len(result.calls)
    generated = [i for i in result.items if i.kind in ("epic", "feature", "story", "task", "test_case")]
    assert {i.call_key for i in generated} <= done
    per_call: dict[str, list[ItemRow]] = {}
    for item in generated:
        per_call.setdefault(item.call_key, []).append(item)
    limit_of = {"epics": 3, "features": 3, "stories": 3, "tasks": 2, "test_cases": 2}
    assert {key.split(":")[0] for key in per_call} >= {"tasks", "test_cases"}  # cancelled among the leaves
    assert all(len(items) == limit_of[key.split(":")[0]] for key, items in per_call.items())
