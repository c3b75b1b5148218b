"""The generation runner: a job as a DAG of stage calls, not a sequence of stage barriers.

As soon as a call commits its items, the calls below each item start. Every call shares the
provider's limiter (concurrency, token bucket, shared Retry-After pause). A failing call retries
alone: a repair turn for invalid output, "fewer items" for truncation, a backoff for transient
errors; after ``max_attempts`` it is recorded as failed with its error and its subtree is skipped.
A call's items, its record and its events commit in one transaction, so a restart (even kill -9)
re-runs only calls that never committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from typing import Any, Protocol

import structlog
from aiolimiter import AsyncLimiter

from outbox.backend import StoreBackend
from outbox.records import CallRow, EventRow, NewEvent, NewItem
from service.calls import CallOutcome, Tally, output_hint
from service.items import STAGES_BY_KIND, JobContext, as_item, item_events, new_items
from service.settings import LLMSettings, QualitySettings
from stages import gate, quality
from stages.answers import accept_answer
from stages.definitions import STAGES, StageDef, build_request, call_key, child_stages, prompt_hash
from stages.errors import (
    OutputInvalid,
    OutputTruncated,
    ProviderError,
    ProviderPermanent,
    ProviderThrottled,
    ProviderTransient,
)
from stages.models import Item
from stages.providers.base import Completion, CompletionRequest, Provider
from vocab import CallStatus, ItemKind

log = structlog.get_logger("backlogd.runner")


class Limiter(Protocol):
    def slot(self) -> Any: ...
    def throttled(self, retry_after: float | None) -> None: ...
    def succeeded(self, latency: float) -> None: ...


class GenerationRunner:
    def __init__(
        self,
        *,
        store: StoreBackend,
        provider: Provider,
        limiter: Limiter,
        llm: LLMSettings,
        quality_settings: QualitySettings,
        publish: Callable[[list[EventRow]], None],
        pool: Executor | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        backoff_base: float = 0.5,
        stage_limits: dict[str, int] | None = None,
        stage_rates: dict[str, float] | None = None,
        pipeline: str = "dag",
    ) -> None:
        self.store = store
        self.provider = provider
        self.limiter = limiter
        self.llm = llm
        self.quality = quality_settings
        self.publish = publish
        self.pool = pool
        self.clock = clock
        self.sleep = sleep
        self.backoff_base = backoff_base
        self.pipeline = pipeline
        # Per-stage budgets: a wide stage (tasks of every story) cannot take every slot from the
        # stages that feed it. The shared limiter still bounds the total.
        self.stage_slots = {name: asyncio.Semaphore(n) for name, n in (stage_limits or {}).items()}
        # Per-stage request rates (token buckets, no start-up burst), inside the shared limiter's.
        self.stage_rates = {
            name: AsyncLimiter(1, 1.0 / rate) for name, rate in (stage_rates or {}).items() if rate > 0
        }

    async def run(self, ctx: JobContext) -> None:
        """Run every call of the job that has not committed yet, as a DAG (or stage by stage)."""
        done = {c.call_key: c for c in await self.store.calls(ctx.job_id)}
        for row in await self.store.items(ctx.job_id):
            if row.kind in STAGES_BY_KIND:
                ctx.add(as_item(ctx.job_id, row))
                ctx.progress.generated[row.kind] += 1
        ctx.progress.calls_done = sum(1 for c in done.values() if c.status == CallStatus.DONE)
        if self.pipeline == "stages":
            await self._run_stages(ctx, done)
            return
        async with asyncio.TaskGroup() as tg:

            def spawn(stage: StageDef, parent: Item | None) -> None:
                if self._needed(ctx, done, stage, parent, spawn):
                    tg.create_task(self._run_call(ctx, stage, parent, spawn))

            for stage in child_stages(None, ctx.include_qa):
                spawn(stage, None)

    async def _run_stages(self, ctx: JobContext, done: dict[str, CallRow]) -> None:
        """The old architecture, kept to measure against: each stage waits for the whole previous one."""
        waiting: dict[str, list[Item | None]] = {name: [] for name in STAGES}

        def spawn(stage: StageDef, parent: Item | None) -> None:
            if self._needed(ctx, done, stage, parent, spawn):
                waiting[stage.name].append(parent)

        for stage in child_stages(None, ctx.include_qa):
            spawn(stage, None)
        for name, stage in STAGES.items():
            async with asyncio.TaskGroup() as tg:
                for parent in waiting[name]:
                    tg.create_task(self._run_call(ctx, stage, parent, spawn))

    def _needed(
        self,
        ctx: JobContext,
        done: dict[str, CallRow],
        stage: StageDef,
        parent: Item | None,
        spawn: Callable[[StageDef, Item | None], None],
    ) -> bool:
        """Whether this call must run; a call committed earlier is skipped but its subtree expanded."""
        key = call_key(stage.name, parent.id if parent else None)
        if key in done and done[key].status == CallStatus.DONE:
            for child in self._children_of(ctx, parent):
                for sub in child_stages(child.kind, ctx.include_qa):
                    spawn(sub, child)
            return False
        ctx.progress.calls_pending += 1
        ctx.progress.unexpanded[stage.name] = ctx.progress.unexpanded.get(stage.name, 0) + 1
        return True

    def _children_of(self, ctx: JobContext, parent: Item | None) -> list[Item]:
        pid = parent.id if parent else None
        return sorted(ctx.children.get(pid, []), key=lambda i: (i.kind, i.position))

    async def _run_call(
        self,
        ctx: JobContext,
        stage: StageDef,
        parent: Item | None,
        spawn: Callable[[StageDef, Item | None], None],
    ) -> None:
        key = call_key(stage.name, parent.id if parent else None)
        bound = structlog.contextvars.bound_contextvars(job_id=ctx.job_id, stage=stage.name, call=key)
        with bound:
            ctx.progress.current_action = f"Generating {stage.name.replace('_', ' ')}" + (
                f" for '{parent.title[:60]}'" if parent else " from the vision"
            )
            ctx.progress.current_agent = stage.agent
            tally = Tally()
            try:
                outcome = await self._attempts(ctx, stage, parent, tally)
            except (ProviderPermanent, ProviderTransient) as exc:
                ctx.llm_requests += tally.requests
                await self._commit_failure(ctx, stage, parent, key, str(exc), tally.attempts)
                return
            except (OutputInvalid, OutputTruncated) as exc:
                ctx.llm_requests += tally.requests
                error = f"{exc}{output_hint(tally.mode, tally.attempts)}"
                await self._commit_failure(ctx, stage, parent, key, error, tally.attempts)
                return
            ctx.llm_requests += tally.requests
            items = new_items(ctx, stage, parent, key, outcome.bodies)
            await self._commit(ctx, stage, parent, key, outcome, items)
        for item in items:
            if item.kind in STAGES_BY_KIND:
                for sub in child_stages(item.kind, ctx.include_qa):
                    spawn(sub, ctx.items[item.id])

    async def answer(self, ctx: JobContext, stage: StageDef, parent: Item, instruction: str) -> CallOutcome:
        """One new answer of ``stage`` for ``parent`` with the user's instruction in the prompt, checked
        like any answer; committing it is the caller's (a regeneration replaces the old children)."""
        return await self._attempts(ctx, stage, parent, Tally(), instruction)

    async def _attempts(
        self, ctx: JobContext, stage: StageDef, parent: Item | None, tally: Tally, instruction: str = ""
    ) -> CallOutcome:
        chain = ctx.chain(parent)
        limit = ctx.limits.cap(stage.limit)
        max_items, repair, previous = limit, None, ""
        regenerations = 0
        started = self.clock()
        tokens = [0, 0]
        while True:
            request = build_request(
                stage,
                ctx.vision,
                chain,
                ctx.neighbours(parent),
                max_items,
                repair=repair,
                previous=previous,
                instruction=instruction,
            )
            tally.attempts += 1
            try:
                completion, latency = await self._complete(request, tally)
            except ProviderTransient as exc:
                throttled = isinstance(exc, ProviderThrottled)
                if throttled:
                    tally.attempts -= 1  # a throttle is the provider's pacing, not a failed attempt
                spent = self.clock() - started
                if spent >= self.llm.call_budget_seconds:
                    raise ProviderTransient(
                        f"{exc} — gave up after {spent:.0f}s, over llm.call_budget_seconds "
                        f"({self.llm.call_budget_seconds:g}s; {tally.throttled} throttled requests)"
                    ) from None
                if throttled:
                    continue  # the limiter paces the retry: Retry-After, or a shared jittered backoff
                if tally.attempts >= self.llm.max_attempts:
                    raise
                await self.sleep(exc.retry_after or self.backoff_base * 2 ** (tally.attempts - 1))
                continue
            tokens[0] += completion.prompt_tokens
            tokens[1] += completion.completion_tokens
            tally.mode = completion.structured_output or tally.mode
            try:
                accepted = accept_answer(
                    stage,
                    completion,
                    ctx.vision,
                    max_items,
                    [],
                    schema=request.json_schema,
                    inherited=list(request.context.get("inherited") or []) or None,
                )
                problems = await self._quality(ctx, stage, accepted.bodies)
                if problems and regenerations < self.quality.max_regenerations:
                    regenerations += 1
                    raise OutputInvalid(problems, raw=completion.content)
            except OutputTruncated:
                log.debug("llm_answer_truncated", attempt=tally.attempts, max_items=max_items)
                if tally.attempts >= self.llm.max_attempts:
                    raise
                max_items, repair, previous = max(1, max_items // 2), None, ""
                continue
            except OutputInvalid as exc:
                log.debug("llm_answer_rejected", attempt=tally.attempts, problems=exc.problems[:5])
                if tally.attempts >= self.llm.max_attempts + regenerations:
                    raise
                repair, previous = exc.problems, completion.content[:4000]
                continue
            if accepted.repairs:
                log.debug("llm_answer_repaired", repairs=len(accepted.repairs), first=accepted.repairs[:3])
                ctx.note_repairs(accepted.repairs)
            return CallOutcome(
                accepted.bodies, tally.attempts, prompt_hash(request), tokens[0], tokens[1], latency * 1000
            )

    async def _complete(self, request: CompletionRequest, tally: Tally) -> tuple[Completion, float]:
        stage_slot = self.stage_slots.get(request.stage)
        stage_rate = self.stage_rates.get(request.stage)
        async with stage_slot or contextlib.nullcontext():
            if stage_rate is not None:  # the stage's own rate first: the shared slot checks the pause last
                await stage_rate.acquire()
            async with self.limiter.slot():
                return await self._send(request, tally)

    async def _send(self, request: CompletionRequest, tally: Tally) -> tuple[Completion, float]:
        """One request inside the limiter's slot, reporting its outcome to the limiter from there."""
        started = self.clock()
        try:
            completion = await self.provider.complete(request)
        except ProviderThrottled as exc:
            tally.requests += 1
            tally.throttled += 1
            self.limiter.throttled(exc.retry_after)  # inside the slot: the limiter knows the load
            raise
        except ProviderError:
            tally.requests += 1
            raise
        except OutputTruncated as exc:  # the server itself could not finish the answer (llama.cpp)
            completion = Completion(content=exc.raw, finish_reason="length")
        latency = self.clock() - started
        tally.requests += completion.requests
        self.limiter.succeeded(latency)  # inside the slot: the limiter counts this request as in use
        return completion, latency

    async def _quality(self, ctx: JobContext, stage: StageDef, bodies: list[dict[str, Any]]) -> list[str]:
        """Hard checks (cut-off or repeated titles, personas that are not users), then near-duplicates."""
        if stage.kind not in (ItemKind.STORY, ItemKind.TEST_CASE):
            return []
        loop = asyncio.get_running_loop()
        titles = [i.title for i in ctx.items.values() if i.kind == stage.kind]
        vision = ctx.vision.model_dump(mode="json")
        problems = await loop.run_in_executor(
            self.pool, gate.hard_problems, stage.kind, bodies, titles, vision
        )
        if stage.kind != ItemKind.STORY:
            return problems
        new = [(b["title"], b["user_story"]) for b in bodies]
        existing = [(i.title, str(i.body.get("user_story", ""))) for i in ctx.stories]
        if not existing:
            return problems
        return problems + await loop.run_in_executor(
            self.pool, quality.near_duplicates, new, existing, self.quality.near_duplicate_threshold
        )

    async def _commit(
        self,
        ctx: JobContext,
        stage: StageDef,
        parent: Item | None,
        key: str,
        outcome: CallOutcome,
        items: list[NewItem],
    ) -> None:
        call = outcome.row(ctx.job_id, key, stage.name, parent.id if parent else None)
        p = ctx.progress
        for it in items:
            p.generated[it.kind] += 1
            if it.kind in STAGES_BY_KIND:
                ctx.add(as_item(ctx.job_id, it))
        p.calls_done += 1
        p.calls_pending -= 1
        p.unexpanded[stage.name] -= 1
        p.update_percent()
        events = item_events(items)
        if stage.name not in ctx.started_stages:
            ctx.started_stages.add(stage.name)
            events.insert(
                0,
                NewEvent(
                    type="stage", payload={"stage": stage.name, "status": "started", "agent": stage.agent}
                ),
            )
        events.append(NewEvent(type="progress", payload=p.snapshot(self.clock(), time.time())))
        self.publish(await self.store.commit_call(call, items, events))
        log.debug(
            "llm_call_committed",
            items=len(items),
            attempts=outcome.attempts,
            latency_ms=round(outcome.latency_ms, 1),
        )

    async def _commit_failure(
        self, ctx: JobContext, stage: StageDef, parent: Item | None, key: str, error: str, attempts: int
    ) -> None:
        log.warning("llm_call_failed", error=error)
        ctx.failed_calls[key] = error
        p = ctx.progress
        p.calls_failed += 1
        p.calls_pending -= 1
        p.unexpanded[stage.name] -= 1
        call = CallRow(
            job_id=ctx.job_id,
            call_key=key,
            stage=stage.name,
            parent_id=parent.id if parent else None,
            status=CallStatus.FAILED,
            prompt_hash="",
            attempts=attempts,
            error=error[:2000],
        )
        events = [
            NewEvent(
                type="error",
                payload={
                    "call": key,
                    "stage": stage.name,
                    "message": error[:500],
                    "parent_id": parent.id if parent else None,
                },
            ),
            NewEvent(type="progress", payload=p.snapshot(self.clock(), time.time())),
        ]
        self.publish(await self.store.commit_call(call, [], events))
