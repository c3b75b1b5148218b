"""Upload coordination: per-job ADO clients and credentials, the relay's active jobs, and upload
progress. One rate gate per ADO identity (organization + PAT), shared by every job that uses it,
so a Retry-After pauses all of that identity's requests.

PATs: the settings name an environment variable (or a systemd credential file under
``$CREDENTIALS_DIRECTORY``); a PAT sent with a job is kept in memory only, never stored.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from hardware.aimd import AdaptiveLimiter
from outbox import queue
from outbox.ado.client import AdoClient
from outbox.ado.types import AdoTarget
from outbox.backend import StoreBackend
from outbox.records import EventRow, NewEvent
from outbox.relay import Relay, Uploader
from service.logs import redact
from service.progress import Progress
from service.requests import JobOptions
from service.settings import AzureDevOpsSettings

log = structlog.get_logger("backlogd.uploads")
GateFactory = Callable[[str], AdaptiveLimiter]  # one per ADO identity, shared by its jobs


def read_secret(name: str | None, env: Mapping[str, str]) -> str | None:
    """A secret by name: a systemd credential file first, then the environment variable."""
    if not name:
        return None
    cred_dir = env.get("CREDENTIALS_DIRECTORY")
    if cred_dir and (Path(cred_dir) / name).is_file():
        secret = (Path(cred_dir) / name).read_text(encoding="utf-8").strip() or None
    else:
        secret = env.get(name) or None
    redact(secret)  # whatever reads a secret makes sure no log line can carry it
    return secret


class UploadCoordinator:
    def __init__(
        self,
        *,
        store: StoreBackend,
        session: aiohttp.ClientSession,
        settings: AzureDevOpsSettings,
        gate_factory: GateFactory,
        publish: Callable[[list[EventRow]], None],
        emulator_url: str | None = None,
        emulator_pat: str | None = None,
        env: Mapping[str, str] | None = None,
        concurrency: int | None = None,
        progress_interval: float = 0.25,
    ) -> None:
        self.store = store
        self.session = session
        self.settings = settings
        self._gate_factory = gate_factory
        self._publish = publish
        self._emulator = (emulator_url, emulator_pat)
        self._env = os.environ if env is None else env
        # read once at start (a credential file changes only with a restart): no file I/O per job
        self._server_pat = read_secret(settings.pat_env, self._env)
        self._pats: dict[str, str] = {}
        self._gates: dict[str, AdaptiveLimiter] = {}
        self._clients: dict[str, AdoClient] = {}
        self._progress: dict[str, Progress] = {}
        self._tick: dict[str, asyncio.Task[None]] = {}
        self._interval = progress_interval
        self.relay = Relay(
            store,
            clients=self.client_for,
            publish=self.observe,
            # Twice the requests the gate allows: an item's store work (claim, record) overlaps other
            # items' requests, so the identity's request slots never idle; the gate bounds the requests.
            concurrency=2 * (concurrency or settings.max_concurrency),
            lease_seconds=settings.lease_seconds,
            max_attempts=settings.upload_retry_attempts,
        )

    # ----- credentials and clients ------------------------------------------------------------

    def remember_pat(self, job_id: str, pat: str) -> None:
        redact(pat)
        self._pats[job_id] = pat
        self._clients.pop(job_id, None)

    def has_credentials(self, job_id: str, options: JobOptions) -> bool:
        return self._target(job_id, options) is not None

    def _target(self, job_id: str, options: JobOptions) -> AdoTarget | None:
        if options.target == "emulator":
            url, pat = self._emulator
            if url is None or pat is None:
                return None
            org_url = url
        else:
            org_url = options.organization_url
            pat = self._pats.get(job_id)
            if pat is None and options.pat_source == "settings":
                pat = self._server_pat
            if not pat or not org_url:
                return None
        return AdoTarget(
            organization_url=org_url,
            project=options.project,
            pat=pat,
            area_path=options.area_path,
            iteration_path=options.iteration_path,
            timeout_seconds=self.settings.upload_timeout_seconds,
        )

    async def client_for(self, job_id: str) -> Uploader | None:
        client = self._clients.get(job_id)
        if client is not None:
            return client
        job = await self.store.get_job(job_id)
        if job is None:
            return None
        target = self._target(job_id, JobOptions.model_validate(job.options))
        if target is None:
            return None
        identity = hashlib.sha256(f"{target.organization_url}\n{target.pat}".encode()).hexdigest()[:16]
        gate = self._gates.get(identity)
        if gate is None:
            gate = self._gates[identity] = self._gate_factory(identity)
        client = AdoClient(self.session, target, gate)
        self._clients[job_id] = client
        return client

    def gate_snapshots(self) -> dict[str, Any]:
        return {f"ado-{name}": g.snapshot() for name, g in self._gates.items()}

    def work_item_url(self, job_id: str, ado_id: int) -> str | None:
        client = self._clients.get(job_id)
        return client.work_item_url(ado_id) if client else None

    # ----- a job's upload ---------------------------------------------------------------------

    def begin(self, job_id: str, options: JobOptions, progress: Progress) -> None:
        """Streaming mode: upload items while the rest is still being generated."""
        self._progress[job_id] = progress
        if options.upload_mode == "streaming" and self.has_credentials(job_id, options):
            self.relay.activate(job_id)

    async def upload(self, job_id: str, options: JobOptions, progress: Progress) -> str:
        """Upload everything the job has; returns 'uploaded', 'errors' or 'needs_credentials'."""
        self._progress[job_id] = progress
        if not self.has_credentials(job_id, options):
            log.warning("upload_needs_credentials", job_id=job_id, pat_env=self.settings.pat_env)
            return "needs_credentials"
        await queue.release(self.store, job_id)
        self.relay.activate(job_id)
        try:
            await self.relay.settled(job_id)
        finally:
            self.relay.deactivate(job_id)
        await self._stop_tick(job_id)  # a debounced progress must not land after the job's final event
        await self._emit_progress(job_id)
        counts = await self.store.item_counts(job_id)
        stuck = sum(n for states in counts.values() for s, n in states.items() if s != "uploaded")
        return "uploaded" if stuck == 0 else "errors"

    async def requeue(self, job_id: str) -> int:
        events = await queue.requeue(self.store, job_id)
        self.observe(events)
        return len(events)

    async def cancel(self, job_id: str) -> None:
        self.relay.deactivate(job_id)
        tick = self._tick.pop(job_id, None)
        if tick is not None:
            tick.cancel()

    # ----- progress ---------------------------------------------------------------------------

    def observe(self, events: list[EventRow]) -> None:
        """Every committed event passes here: upload states feed the job's counts."""
        self._publish(events)
        for ev in events:
            if ev.type == "item":
                self.relay.wake()
            progress = self._progress.get(ev.job_id)
            if ev.type != "upload" or progress is None:
                continue
            kind, state = ev.payload["kind"], ev.payload["state"]
            if state == "uploaded":
                progress.uploaded[kind] += 1
            elif state in ("dead", "blocked"):
                progress.failed[kind] += 1
            elif state == "pending":
                progress.failed[kind] = max(0, progress.failed[kind] - 1)
            if ev.job_id not in self._tick:
                self._tick[ev.job_id] = asyncio.get_running_loop().create_task(self._debounced(ev.job_id))

    async def _stop_tick(self, job_id: str) -> None:
        tick = self._tick.pop(job_id, None)
        if tick is not None:
            tick.cancel()
            await asyncio.gather(tick, return_exceptions=True)

    async def _debounced(self, job_id: str) -> None:
        try:
            await asyncio.sleep(self._interval)
            await self._emit_progress(job_id)
        finally:
            self._tick.pop(job_id, None)

    async def _emit_progress(self, job_id: str) -> None:
        progress = self._progress.get(job_id)
        if progress is None:
            return
        progress.update_percent()
        payload = progress.snapshot(time.monotonic(), time.time())
        self._publish(await self.store.append_events(job_id, [NewEvent(type="progress", payload=payload)]))

    async def close(self) -> None:
        for task in list(self._tick.values()):
            task.cancel()
        await asyncio.gather(*self._tick.values(), return_exceptions=True)
