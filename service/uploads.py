"""Upload coordination: a job's upload from start to outcome. The relay moves the items, the ADO
clients hold credentials and rate gates, the upload progress counts outcomes; the composition root
builds all three and hands them in.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

from outbox import queue
from outbox.ado.client import AdoClient
from outbox.ado.preflight import CheckReport
from outbox.backend import StoreBackend
from outbox.records import EventRow
from outbox.relay import Relay
from service.ado_clients import AdoClients
from service.progress import Progress
from service.upload_progress import UploadProgress
from vocab import ItemState, UploadOutcome
from vocab.options import JobOptions

log = structlog.get_logger("backlogd.uploads")


class UploadCoordinator:
    def __init__(
        self, *, store: StoreBackend, clients: AdoClients, relay: Relay, progress: UploadProgress
    ) -> None:
        self._store = store
        self._clients = clients
        self._relay = relay
        self._progress = progress
        self._holders: dict[str, int] = {}  # job → how many want the relay on it (see _hold)
        self._followers: dict[str, asyncio.Task[None]] = {}  # job → the task sending its edits

    # ----- credentials and checks (the clients') ----------------------------------------------

    def remember_pat(self, job_id: str, pat: str) -> None:
        self._clients.remember_pat(job_id, pat)

    async def preflight(self, job_id: str, options: JobOptions) -> CheckReport | None:
        return await self._clients.preflight(job_id, options)

    async def check_options(self, options: JobOptions, pat: str | None = None) -> CheckReport:
        return await self._clients.check_options(options, pat)

    async def ado_client(self, job_id: str) -> AdoClient | None:
        """The job's client (an edit reads the work item before it overwrites anything)."""
        return await self._clients.ado_client(job_id)

    def gate_snapshots(self) -> dict[str, Any]:
        return self._clients.gate_snapshots()

    def forget(self, job_id: str) -> None:
        """The job has ended: drop its PAT, client, progress and debounce task."""
        self._clients.forget(job_id)
        self._progress.forget(job_id)

    def tracked_jobs(self) -> int:
        """How many jobs this coordinator holds anything for (it must not grow with finished jobs)."""
        return len(self._clients.tracked_jobs() | self._progress.tracked_jobs())

    # ----- a job's upload ---------------------------------------------------------------------

    def begin(self, job_id: str, options: JobOptions, progress: Progress) -> None:
        """Streaming mode: upload items while the rest is still being generated."""
        self._progress.track(job_id, progress)
        if options.upload_mode == "streaming" and self._clients.has_credentials(job_id, options):
            self._relay.activate(job_id)

    async def upload(
        self, job_id: str, options: JobOptions, progress: Progress, *, release: bool = True
    ) -> UploadOutcome:
        """Upload everything the job has released (all its held items unless ``release`` is False: review
        mode released some epics already) and say what it came to; items still held do not count."""
        self._progress.track(job_id, progress)
        if not self._clients.has_credentials(job_id, options):
            log.warning("upload_needs_credentials", job_id=job_id, pat_env=self._clients.pat_env)
            return UploadOutcome.NEEDS_CREDENTIALS
        if release:
            await queue.release(self._store, job_id)
        self._hold(job_id)
        try:
            await self._relay.settled(job_id)
        finally:
            self._unhold(job_id)
        await self._progress.flush(job_id)
        counts = await self._store.item_counts(job_id)
        by_state: dict[str, int] = {}
        for states in counts.values():
            for state, n in states.items():
                by_state[state] = by_state.get(state, 0) + n
        stuck = sum(n for state, n in by_state.items() if state not in (ItemState.UPLOADED, ItemState.HELD))
        outcome = UploadOutcome.UPLOADED if stuck == 0 else UploadOutcome.ERRORS
        log.info("job_uploaded", job_id=job_id, outcome=outcome, items=by_state)
        return outcome

    def _hold(self, job_id: str) -> None:
        """The relay works on a job while anyone holds it: its upload, or an edit's update to send."""
        self._holders[job_id] = self._holders.get(job_id, 0) + 1
        self._relay.activate(job_id)

    def _unhold(self, job_id: str) -> None:
        left = self._holders.get(job_id, 0) - 1
        if left > 0:
            self._holders[job_id] = left
            return
        self._holders.pop(job_id, None)
        self._relay.deactivate(job_id)

    def follow(self, job_id: str) -> None:
        """An edit made an update to send (possibly on a finished job): the relay takes the job until
        nothing is open any more, in a task this coordinator owns."""
        if job_id in self._followers:
            self._relay.wake()
            return
        self._hold(job_id)

        async def until_settled() -> None:
            try:
                await self._relay.settled(job_id)
            finally:
                self._followers.pop(job_id, None)
                self._unhold(job_id)

        self._followers[job_id] = asyncio.get_running_loop().create_task(
            until_settled(), name=f"follow-{job_id}"
        )

    async def requeue(self, job_id: str) -> int:
        events = await queue.requeue(self._store, job_id)
        self.observe(events)
        return len(events)

    async def cancel(self, job_id: str) -> None:
        self._relay.deactivate(job_id)
        await self._progress.stop(job_id)

    def observe(self, events: list[EventRow]) -> None:
        """Every committed event of the runner passes here: new items wake the relay."""
        self._progress.observe(events)
        if any(ev.type == "item" for ev in events):
            self._relay.wake()

    async def close(self) -> None:
        """Cancel the followers and the debounced progress events still waiting (the store closes
        after this)."""
        tasks = list(self._followers.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._progress.close()
