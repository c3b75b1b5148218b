"""The upload relay: a continuous loop that moves outbox items to Azure DevOps.

It claims parent-first (an item is claimable once its parent and prerequisites are uploaded),
uploads each claimed item in its own task up to ``concurrency`` at once, and records every outcome
under the item's fence. Throttling is not handled here: the ADO client pauses the shared gate of
the identity on any Retry-After or X-RateLimit-Delay, so every task waits, not just the one that
was told. An ambiguous failure is never retried blindly: the next attempt reconciles by key first.
A row that already has a work item and a revision (uploaded, then edited) is an update: a PATCH with
a ``test`` of that revision, never a second create; a change made in Azure DevOps meanwhile ends the
row in ``conflict`` with their values kept on it, nothing overwritten.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

import aiohttp
import structlog

from outbox import queue
from outbox.ado.errors import AdoAmbiguous, AdoError, AdoPermanent, AdoRevisionConflict, AdoTransient
from outbox.ado.types import Uploaded, UploadItem
from outbox.backend import DISCONNECTS, StoreBackend
from outbox.records import EventRow, ItemRow

log = structlog.get_logger("backlogd.relay")


class Uploader(Protocol):
    async def upload(self, item: UploadItem, *, reconcile: bool) -> Uploaded: ...


ClientSource = Callable[[str], Awaitable[Uploader | None]]


def idempotency_key(item_id: str) -> str:
    return "bk-" + item_id.replace("-", "")[:20]


def run_tag(job_id: str) -> str:
    return "bi-" + job_id.replace("-", "")[:12]


class Relay:
    def __init__(
        self,
        store: StoreBackend,
        *,
        clients: ClientSource,
        publish: Callable[[list[EventRow]], None],
        concurrency: int = 8,
        lease_seconds: float = 120.0,
        max_attempts: int = 8,
        poll_seconds: float = 0.25,
        backoff_base: float = 0.5,
        backoff_cap: float = 60.0,
        owner: str | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.clients = clients
        self.publish = publish
        self.concurrency = concurrency
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.poll_seconds = poll_seconds
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.owner = owner or f"relay-{uuid.uuid4().hex[:8]}"
        self.clock = clock
        self._active: set[str] = set()
        self._inflight: dict[str, asyncio.Task[None]] = {}
        self._wake = asyncio.Event()
        self._changed = asyncio.Condition()
        self._claiming = True
        self.alive = False

    # ----- control ----------------------------------------------------------------------------

    def activate(self, job_id: str) -> None:
        self._active.add(job_id)
        self.wake()

    def deactivate(self, job_id: str) -> None:
        self._active.discard(job_id)

    def wake(self) -> None:
        self._wake.set()

    async def settled(self, job_id: str) -> None:
        """Wait until the job has nothing pending, in flight or waiting to retry."""
        while True:
            async with self._changed:
                busy = any(key.startswith(f"{job_id}/") for key in self._inflight)
                if not busy and await queue.open_count(self.store, job_id) == 0:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), timeout=self.poll_seconds * 4)

    # ----- the loop ---------------------------------------------------------------------------

    async def run(self) -> None:
        self.alive = True
        try:
            delay = self.poll_seconds
            while True:
                self._wake.clear()
                try:
                    await self._claim_some()
                    delay = self.poll_seconds
                except DISCONNECTS as exc:  # the database went away: back off, never die
                    log.warning("relay_claim_failed", error=str(exc)[:200], retry_in=delay)
                    delay = min(delay * 2, self.backoff_cap)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=delay)
        finally:
            self.alive = False

    async def _claim_some(self) -> None:
        if not self._claiming or not self._active:
            return
        await self._record(queue.block_orphans(self.store, sorted(self._active)))
        free = self.concurrency - len(self._inflight)
        if free <= 0:
            return
        # An item still in our hands (e.g. waiting out a long pause at the gate) is never re-leased to us:
        # that would bump its fence and throw away our own result.
        busy = [key.split("/", 1)[1] for key in self._inflight]
        rows = await queue.claim(
            self.store, sorted(self._active), self.owner, self.clock(), self.lease_seconds, free, busy
        )
        for row in rows:
            key = f"{row.job_id}/{row.id}"
            self._inflight[key] = asyncio.create_task(self._work(key, row), name=f"upload-{row.id}")

    async def _work(self, key: str, row: ItemRow) -> None:
        try:
            await self._upload(row)
        finally:
            self._inflight.pop(key, None)
            self.wake()
            async with self._changed:
                self._changed.notify_all()

    async def stop(self, grace: float) -> None:
        """Stop claiming, let in-flight uploads finish within ``grace``, then release the rest."""
        self._claiming = False
        pending = list(self._inflight.values())
        if pending:
            _, still = await asyncio.wait(pending, timeout=grace)
            for task in still:
                task.cancel()
            await asyncio.gather(*still, return_exceptions=True)
        released = await queue.release_leases(self.store, self.owner)
        log.info("relay_stopped", released_leases=released)

    # ----- one item ---------------------------------------------------------------------------

    async def _upload(self, row: ItemRow) -> None:
        with structlog.contextvars.bound_contextvars(job_id=row.job_id, item_id=row.id, kind=row.kind):
            client = await self.clients(row.job_id)
            if client is None:
                await self._record(
                    queue.mark_retry(
                        self.store,
                        row,
                        self.clock() + self.backoff_cap,
                        "no Azure DevOps credentials for this job",
                        reconcile=False,
                    )
                )
                return
            try:
                item = await self._request(row)
                result = await client.upload(item, reconcile=row.reconcile)
            except AdoRevisionConflict as exc:
                log.info("update_conflict", error=str(exc))
                await self._record(queue.mark_conflict(self.store, row, exc.theirs, exc.fields))
            except AdoPermanent as exc:
                log.warning("upload_dead", error=str(exc))
                await self._record(queue.mark_dead(self.store, row, str(exc), _created(exc)))
            except AdoAmbiguous as exc:
                await self._retry(row, exc, reconcile=True)
            except AdoTransient as exc:
                await self._retry(row, exc, reconcile=False)
            except (
                aiohttp.ClientError,
                TimeoutError,
            ) as exc:  # unexpected transport error: assume it may have landed
                await self._retry(row, AdoAmbiguous(f"{type(exc).__name__}: {exc}"), reconcile=True)
            else:
                extra = {**item.refs, **result.extra} if row.kind == "test_suite" else dict(result.extra)
                await self._record(
                    queue.mark_uploaded(
                        self.store, row, result.ado_id, result.url, result.rev, extra, result.written
                    )
                )

    async def _retry(self, row: ItemRow, exc: AdoError, *, reconcile: bool) -> None:
        if row.attempts >= self.max_attempts:
            msg = f"gave up after {row.attempts} attempts: {exc}"
            await self._record(queue.mark_dead(self.store, row, msg, _created(exc)))
            return
        backoff = min(self.backoff_cap, self.backoff_base * 2 ** (row.attempts - 1))
        delay = max(backoff, exc.retry_after or 0.0)
        log.debug("upload_retry", error=str(exc), delay=round(delay, 3), reconcile=reconcile)
        await self._record(
            queue.mark_retry(
                self.store, row, self.clock() + delay, str(exc), reconcile=reconcile, created_id=_created(exc)
            )
        )

    async def _record(self, change: Awaitable[list[EventRow]]) -> None:
        # Shielded: a shutdown must not cut a commit in half-way through the bookkeeping.
        events = await asyncio.shield(change)
        if events:
            self.publish(events)

    async def _request(self, row: ItemRow) -> UploadItem:
        deps = await queue.resolved(self.store, [d for d in (row.parent_id, *row.depends_on) if d])
        parent = deps.get(row.parent_id) if row.parent_id else None
        refs: dict[str, int] = {}
        for dep_id in row.depends_on:
            dep = deps[dep_id]
            if dep.kind == "test_plan" and dep.ado_id is not None:
                refs = {"plan_id": dep.ado_id, "root_suite_id": dep.ado_extra.get("root_suite_id", 0)}
            elif dep.kind == "test_suite" and dep.ado_id is not None:
                refs = {"plan_id": dep.ado_extra.get("plan_id", 0), "suite_id": dep.ado_id}
        return UploadItem(
            id=row.id,
            job_id=row.job_id,
            kind=row.kind,
            title=row.title,
            body=row.body,
            key=idempotency_key(row.id),
            run_tag=run_tag(row.job_id),
            parent_ado_id=parent.ado_id if parent else None,
            refs=refs,
            existing_ado_id=row.ado_id,
            # an uploaded row edited again: an update of its work item, never a second create
            rev=row.ado_rev if row.ado_id is not None else None,
            written=row.written or {},
        )


def _created(exc: AdoError) -> int | None:
    created = getattr(exc, "created", None)
    return created.ado_id if created is not None else None
