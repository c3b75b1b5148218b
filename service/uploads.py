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
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from hardware.aimd import AdaptiveLimiter
from outbox import queue
from outbox.ado.client import AdoClient
from outbox.ado.preflight import CheckReport, Problem
from outbox.ado.types import AdoTarget
from outbox.backend import StoreBackend
from outbox.records import EventRow, NewEvent
from outbox.relay import Relay, Uploader
from service.edit_events import AZURE_DEVOPS, edit_event
from service.logs import redact, unredact
from service.progress import Progress
from service.requests import JobOptions
from service.settings import AzureDevOpsSettings
from service.targets import may_use_server_pat
from vocab import FAILED_ITEM_STATES, ItemState, UploadOutcome

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
        self._clients: dict[str, AdoClient] = {}  # job id → its target's client
        self._by_target: dict[tuple[str, ...], AdoClient] = {}  # one per (org, PAT, project, paths)
        self._identities: dict[str, str] = {}  # job -> the rate identity its client uses
        self._own_identities: set[str] = set()  # identities of PATs sent with a job
        self._progress: dict[str, Progress] = {}
        self._tick: dict[str, asyncio.Task[None]] = {}
        self._interval = progress_interval
        self._holders: dict[str, int] = {}  # job → how many want the relay on it (see _hold)
        self._followers: dict[str, asyncio.Task[None]] = {}  # job → the task sending its edits
        self._notes: set[asyncio.Task[None]] = set()  # conflict edit events being written
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

    def forget(self, job_id: str) -> None:
        """The job has ended: drop its PAT, client, progress and debounce task, and the rate gate of its
        own PAT once no other job uses it."""
        pat = self._pats.pop(job_id, None)
        if pat is not None and pat not in self._pats.values() and pat != self._server_pat:
            unredact(pat)
        self._clients.pop(job_id, None)
        self._progress.pop(job_id, None)
        tick = self._tick.pop(job_id, None)
        if tick is not None:
            tick.cancel()
        identity = self._identities.pop(job_id, None)
        if identity in self._own_identities and identity not in self._identities.values():
            self._own_identities.discard(identity)  # a per-job PAT's gate and clients nobody uses any
            self._gates.pop(identity, None)  # more; the server's and the emulator's stay (they keep what
            for key in [k for k in self._by_target if k[0] == identity]:  # they learnt)
                del self._by_target[key]

    def tracked_jobs(self) -> int:
        """How many jobs this coordinator holds anything for (it must not grow with finished jobs)."""
        held = set(self._pats) | set(self._clients) | set(self._progress) | set(self._tick)
        return len(held | set(self._identities))

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
            server_pat_ok = may_use_server_pat(org_url, self.settings)  # only the configured organization
            if pat is None and options.pat_source == "settings" and server_pat_ok:
                pat = self._server_pat
            if not pat or not org_url:
                return None
        return self.target_for(options, org_url, pat)

    def target_for(self, options: JobOptions, organization_url: str, pat: str) -> AdoTarget:
        ado = self.settings
        return AdoTarget(
            organization_url=organization_url,
            project=options.project,
            pat=pat,
            area_path=options.area_path,
            iteration_path=options.iteration_path,
            timeout_seconds=ado.upload_timeout_seconds,
            field_defaults=ado.field_defaults,
            iteration_start=ado.iteration_start.isoformat() if ado.iteration_start else None,
            iteration_finish=ado.iteration_finish.isoformat() if ado.iteration_finish else None,
        )

    def emulator_target(self, options: JobOptions) -> AdoTarget | None:
        url, pat = self._emulator
        return self.target_for(options, url, pat) if url and pat else None

    async def client_for(self, job_id: str) -> Uploader | None:
        return await self.ado_client(job_id)

    async def ado_client(self, job_id: str) -> AdoClient | None:
        client = self._clients.get(job_id)
        if client is not None:
            return client
        job = await self.store.get_job(job_id)
        if job is None:
            return None
        target = self._target(job_id, JobOptions.model_validate(job.options))
        if target is None:
            return None
        # No await from here on: concurrent callers for one job (or one target) share one client, so
        # the project is discovered once per (organization, PAT, project).
        identity = _identity(target.organization_url, target.pat)
        self._identities[job_id] = identity
        if target.pat == self._pats.get(job_id) and target.pat not in (self._server_pat, self._emulator[1]):
            self._own_identities.add(identity)
        client = self._clients[job_id] = self.client_of(target)
        return client

    def client_of(self, target: AdoTarget) -> AdoClient:
        identity = _identity(target.organization_url, target.pat)
        key = (identity, target.project.casefold(), target.area_path, target.iteration_path)
        client = self._by_target.get(key)
        if client is None:
            gate = self._gates.get(identity)
            if gate is None:
                gate = self._gates[identity] = self._gate_factory(identity)
            client = self._by_target[key] = AdoClient(self.session, target, gate)
        return client

    async def preflight(self, job_id: str, options: JobOptions) -> CheckReport | None:
        """The job's target checked before generation (None: no credentials to check with)."""
        target = self._target(job_id, options)
        if target is None:
            return None
        return await self.client_of(target).check(include_qa=options.include_qa)

    async def check_options(self, options: JobOptions, pat: str | None = None) -> CheckReport:
        """Pre-flight of where a job with these options would upload (``backlogd check``, the API)."""
        if options.target == "emulator":
            target = self.emulator_target(options)
        else:
            # the server's PAT goes to the configured organization only
            server_pat = (
                self._server_pat if may_use_server_pat(options.organization_url, self.settings) else None
            )
            secret = pat or server_pat
            target = self.target_for(options, options.organization_url, secret) if secret else None
        if target is None:
            where = options.organization_url or "(no organization_url)"
            return CheckReport(
                where,
                options.project,
                problems=(
                    Problem(
                        "pat",
                        "no PAT to check with",
                        f"put the PAT in the environment variable {self.settings.pat_env} (or a systemd "
                        "credential of that name), or send one with the request",
                    ),
                ),
            )
        if not target.organization_url.startswith(("http://", "https://")):
            problem = Problem(
                "connection",
                f"organization_url {target.organization_url!r} is not a URL",
                "set azure_devops.organization_url to https://dev.azure.com/<organization>",
            )
            return CheckReport(target.organization_url, options.project, problems=(problem,))
        return await self.check(target, include_qa=options.include_qa)

    async def check(self, target: AdoTarget, *, include_qa: bool) -> CheckReport:
        """An ad-hoc check (CLI, API): a client of its own (not kept), behind the identity's gate."""
        identity = _identity(target.organization_url, target.pat)
        gate = self._gates.get(identity) or self._gate_factory(identity)
        return await AdoClient(self.session, target, gate).check(include_qa=include_qa)

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

    async def upload(
        self, job_id: str, options: JobOptions, progress: Progress, *, release: bool = True
    ) -> UploadOutcome:
        """Upload everything the job has released (all its held items unless ``release`` is False: review
        mode released some epics already) and say what it came to; items still held do not count."""
        self._progress[job_id] = progress
        if not self.has_credentials(job_id, options):
            log.warning("upload_needs_credentials", job_id=job_id, pat_env=self.settings.pat_env)
            return UploadOutcome.NEEDS_CREDENTIALS
        if release:
            await queue.release(self.store, job_id)
        self._hold(job_id)
        try:
            await self.relay.settled(job_id)
        finally:
            self._unhold(job_id)
        await self._stop_tick(job_id)  # a debounced progress must not land after the job's final event
        await self._emit_progress(job_id)
        counts = await self.store.item_counts(job_id)
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
        self.relay.activate(job_id)

    def _unhold(self, job_id: str) -> None:
        left = self._holders.get(job_id, 0) - 1
        if left > 0:
            self._holders[job_id] = left
            return
        self._holders.pop(job_id, None)
        self.relay.deactivate(job_id)

    def follow(self, job_id: str) -> None:
        """An edit made an update to send (possibly on a finished job): the relay takes the job until
        nothing is open any more, in a task this coordinator owns."""
        if job_id in self._followers:
            self.relay.wake()
            return
        self._hold(job_id)

        async def until_settled() -> None:
            try:
                await self.relay.settled(job_id)
            finally:
                self._followers.pop(job_id, None)
                self._unhold(job_id)

        self._followers[job_id] = asyncio.get_running_loop().create_task(
            until_settled(), name=f"follow-{job_id}"
        )

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
            if ev.type == "upload" and ev.payload.get("state") == ItemState.CONFLICT:
                item_id = str(ev.payload["id"])
                self._own(self._conflict_edit(ev.job_id, item_id), f"conflict-{item_id}")
            progress = self._progress.get(ev.job_id)
            if ev.type != "upload" or progress is None:
                continue
            kind, state = ev.payload["kind"], ev.payload["state"]
            if ev.payload.get("update"):
                continue  # an update of a work item counted when it was created
            if state == ItemState.UPLOADED:
                progress.uploaded[kind] += 1
            elif state in FAILED_ITEM_STATES:
                progress.failed[kind] += 1
            elif state == ItemState.PENDING:
                progress.failed[kind] = max(0, progress.failed[kind] - 1)
            if ev.job_id not in self._tick:
                self._tick[ev.job_id] = asyncio.get_running_loop().create_task(self._debounced(ev.job_id))

    def _own(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._notes.add(task)
        task.add_done_callback(self._notes.discard)

    async def _conflict_edit(self, job_id: str, item_id: str) -> None:
        """The uploader found the work item changed in Azure DevOps: every page hears it as an edit."""
        row = next((r for r in await self.store.items(job_id) if r.id == item_id), None)
        if row is not None:
            ev = edit_event("conflict", row, AZURE_DEVOPS, item_id=item_id)
            self._publish(await self.store.append_events(job_id, [ev]))

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
        tasks = [*self._tick.values(), *self._followers.values(), *self._notes]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _identity(organization_url: str, pat: str) -> str:
    """One rate gate per organization + PAT; a digest, so the PAT is not the key."""
    return hashlib.sha256(f"{organization_url}\n{pat}".encode()).hexdigest()[:16]
