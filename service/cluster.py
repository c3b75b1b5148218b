"""Several instances on one PostgreSQL database: who runs which job, and progress from everywhere.

- **Job leases**: an instance runs a job only while it holds the job's lease (``claim_job``); its
  heartbeat renews every lease it holds each ``lease/3``. A lease it fails to renew (another instance
  took the job, the job was cancelled elsewhere, or the database was unreachable for most of a lease)
  stops the job's local run at once. A claimer takes open jobs nobody holds — new ones, and those of an
  instance that died — whenever a slot is free; the job resumes from its committed calls.
- **Progress**: every committed event is announced with ``NOTIFY`` (instance, job, seqs). For jobs
  this instance has subscribers for, the feed reads the new rows and publishes them to the local
  broadcaster; SSE streams drop duplicates and replay gaps by seq. A slow poll covers missed
  notifications (the listener was reconnecting).
- **Pacing**: shared pauses (``service/pacing.py``) arrive through the same listener.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from typing import Protocol

import structlog

from outbox.backend import DISCONNECTS, LeaseLost
from outbox.pg import leases
from outbox.pg.listener import Listener
from outbox.pg.store import EVENTS_CHANNEL, JOBS_CHANNEL, PAUSES_CHANNEL, PgStore
from service.broadcaster import Broadcaster
from service.pacing import SharedPauses

log = structlog.get_logger("backlogd.cluster")


def interrupted(exc: BaseException) -> bool:
    """Whether a job's run ended because this instance lost the job (lease or database), not a bug."""
    if isinstance(exc, BaseExceptionGroup):
        return all(interrupted(e) for e in exc.exceptions)
    return isinstance(exc, (LeaseLost, *DISCONNECTS))


class Runner(Protocol):
    """What the cluster needs of the job manager."""

    def start(self, job_id: str) -> object: ...
    def drop(self, job_id: str) -> None: ...
    def free_slots(self) -> int: ...
    def running(self) -> set[str]: ...


class Cluster:
    def __init__(
        self,
        store: PgStore,
        broadcaster: Broadcaster,
        *,
        lease_seconds: float,
        poll_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.store = store
        self.owner = store.instance
        self.broadcaster = broadcaster
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        # A new job is left this long to the instance it was submitted to (which leases it at once when
        # it has a slot); after that an idle instance takes it.
        self.fresh_seconds = max(poll_seconds, lease_seconds / 3)
        self.pauses = SharedPauses(store)
        self._clock = clock
        self._jobs: Runner | None = None
        self._wake = asyncio.Event()
        self._seen: dict[str, int] = {}
        self._want: dict[str, int] = {}
        self._pulls: dict[str, asyncio.Task[None]] = {}
        self.listener = Listener(
            store.url,
            {
                EVENTS_CHANNEL: self._on_event,
                JOBS_CHANNEL: self._on_job,
                PAUSES_CHANNEL: self.pauses.on_notify,
            },
            on_connect=self._on_connect,
        )

    @property
    def listening(self) -> bool:
        """The notification connection is up (jobs and events arrive without polling)."""
        return self.listener.connected

    def attach(self, jobs: Runner) -> None:
        self._jobs = jobs

    # ----- leases (called by the job manager) -------------------------------------------------

    async def acquire(self, job_id: str) -> bool:
        return await leases.claim_job(self.store, job_id, self.owner, self.lease_seconds) is not None

    def interrupted(self, exc: BaseException) -> bool:
        return interrupted(exc)

    async def release(self, job_id: str) -> None:
        try:
            await leases.release_job(self.store, job_id, self.owner)
        except DISCONNECTS as exc:  # forgotten here: the lease runs out and another instance takes over
            log.warning("job_release_failed", job_id=job_id, error=str(exc)[:200])

    # ----- the background loops ---------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Cluster]:
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(self.listener.run(), name="cluster-listener"),
                tg.create_task(self._heartbeat(), name="cluster-heartbeat"),
                tg.create_task(self._claimer(), name="cluster-claimer"),
                tg.create_task(self._poller(), name="cluster-poller"),
            ]
            try:
                yield self
            finally:
                for task in [*tasks, *self._pulls.values()]:
                    task.cancel()
        await self.pauses.close()

    async def _heartbeat(self) -> None:
        last_ok = self._clock()
        while True:
            await asyncio.sleep(self.lease_seconds / 3)
            held = set(self.store.held_jobs())
            try:
                renewed = await leases.renew_jobs(self.store, self.owner, self.lease_seconds)
                last_ok = self._clock()
            except Exception as exc:  # the loop never dies: unrenewed leases are handled below
                log.warning("lease_renewal_failed", error=f"{type(exc).__name__}: {exc}"[:200])
                if self._clock() - last_ok < self.lease_seconds * 0.8:
                    continue
                renewed = set()  # others may take our jobs any moment now: stop them here first
            for job_id in held - renewed:
                if self.store.fence_of(job_id) is None:
                    continue  # released meanwhile (the job ended here)
                log.warning("job_lease_lost", job_id=job_id)
                self.store.forget_job(job_id)
                if self._jobs is not None:
                    self._jobs.drop(job_id)

    async def _claimer(self) -> None:
        delay = self.poll_seconds
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)
            self._wake.clear()
            if self._jobs is None or (free := self._jobs.free_slots()) <= 0:
                continue
            try:
                found = await leases.claimable_jobs(self.store, free, fresh_seconds=self.fresh_seconds)
                delay = self.poll_seconds
            except Exception as exc:  # the loop never dies: it tries again after a growing pause
                log.warning("job_claim_failed", error=f"{type(exc).__name__}: {exc}"[:200])
                delay = min(delay * 2, self.lease_seconds)
                continue
            for job_id in found:
                if job_id not in self._jobs.running():
                    log.info("job_taken_over", job_id=job_id)
                    self._jobs.start(job_id)

    def _on_job(self, _payload: str) -> None:
        self._wake.set()

    # ----- progress from other instances ------------------------------------------------------

    def _on_event(self, payload: str) -> None:
        instance, job_id, first, last = payload.split(" ")
        if instance == self.owner or self.broadcaster.client_count(job_id) == 0:
            return
        self._seen.setdefault(job_id, int(first) - 1)
        self._pull(job_id, int(last))

    def _pull(self, job_id: str, upto: int) -> None:
        self._want[job_id] = max(self._want.get(job_id, 0), upto)
        if job_id not in self._pulls:
            self._pulls[job_id] = asyncio.create_task(self._read(job_id), name=f"feed-{job_id}")

    async def _read(self, job_id: str) -> None:
        try:
            while self._seen.get(job_id, 0) < self._want.get(job_id, 0):
                rows = await self.store.events_after(job_id, self._seen.get(job_id, 0), limit=1000)
                if not rows:
                    break
                self._seen[job_id] = rows[-1].seq
                self.broadcaster.publish(rows)
        except DISCONNECTS as exc:
            log.warning("feed_read_failed", job_id=job_id, error=str(exc)[:200])
        finally:
            del self._pulls[job_id]

    async def _poller(self) -> None:
        """Catch up every watched job whose notifications were missed; forget unwatched ones."""
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self._catch_up()
            except Exception as exc:  # the loop never dies: the next round catches up
                log.warning("feed_poll_failed", error=f"{type(exc).__name__}: {exc}"[:200])

    async def _catch_up(self) -> None:
        watched = set(self.broadcaster.watched_jobs())
        for job_id in list(self._seen):
            if job_id not in watched:
                self._seen.pop(job_id, None)
                self._want.pop(job_id, None)
        for job_id in watched:
            job = await self.store.get_job(job_id)
            if job is not None:
                self._seen.setdefault(job_id, job.last_seq)
                if job.last_seq > self._seen[job_id]:
                    self._pull(job_id, job.last_seq)

    async def _on_connect(self) -> None:
        self._wake.set()
        await self.pauses.refresh()
        await self._catch_up()
