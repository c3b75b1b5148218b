"""The Azure DevOps clients of the jobs: credentials, targets and one rate gate per ADO identity
(organization + PAT), shared by every job that uses it, so a Retry-After pauses all of that identity's
requests.

PATs: the settings name an environment variable (or a systemd credential file under
``$CREDENTIALS_DIRECTORY``); a PAT sent with a job is kept in memory only, never stored.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from hardware.aimd import AdaptiveLimiter
from outbox.ado.client import AdoClient
from outbox.ado.preflight import CheckReport, Problem
from outbox.ado.types import AdoTarget
from outbox.backend import StoreBackend
from outbox.relay import Uploader
from service.logs import redact, unredact
from service.secrets import read_secret
from service.settings import AzureDevOpsSettings
from service.targets import may_use_server_pat
from vocab.options import JobOptions

GateFactory = Callable[[str], AdaptiveLimiter]  # one per ADO identity, shared by its jobs


class AdoClients:
    def __init__(
        self,
        *,
        store: StoreBackend,
        session: aiohttp.ClientSession,
        settings: AzureDevOpsSettings,
        gate_factory: GateFactory,
        emulator_url: str | None = None,
        emulator_pat: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self._store = store
        self._session = session
        self._settings = settings
        self._gate_factory = gate_factory
        self._emulator = (emulator_url, emulator_pat)
        # read once at start (a credential file changes only with a restart): no file I/O per job
        self._server_pat = read_secret(settings.pat_env, os.environ if env is None else env)
        self._pats: dict[str, str] = {}
        self._gates: dict[str, AdaptiveLimiter] = {}
        self._clients: dict[str, AdoClient] = {}  # job id → its target's client
        self._by_target: dict[tuple[str, ...], AdoClient] = {}  # one per (org, PAT, project, paths)
        self._identities: dict[str, str] = {}  # job -> the rate identity its client uses
        self._own_identities: set[str] = set()  # identities of PATs sent with a job

    @property
    def pat_env(self) -> str:
        """Where the server's PAT is read from (for messages: never the PAT)."""
        return self._settings.pat_env

    def remember_pat(self, job_id: str, pat: str) -> None:
        redact(pat)
        self._pats[job_id] = pat
        self._clients.pop(job_id, None)

    def forget(self, job_id: str) -> None:
        """The job has ended: drop its PAT and client, and the rate gate of its own PAT once no other
        job uses it."""
        pat = self._pats.pop(job_id, None)
        if pat is not None and pat not in self._pats.values() and pat != self._server_pat:
            unredact(pat)
        self._clients.pop(job_id, None)
        identity = self._identities.pop(job_id, None)
        if identity in self._own_identities and identity not in self._identities.values():
            self._own_identities.discard(identity)  # a per-job PAT's gate and clients nobody uses any
            self._gates.pop(identity, None)  # more; the server's and the emulator's stay (they keep what
            for key in [k for k in self._by_target if k[0] == identity]:  # they learnt)
                del self._by_target[key]

    def tracked_jobs(self) -> set[str]:
        """The jobs these clients hold anything for (it must not grow with finished jobs)."""
        return set(self._pats) | set(self._clients) | set(self._identities)

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
            server_pat_ok = may_use_server_pat(org_url, self._settings)  # only the configured organization
            if pat is None and options.pat_source == "settings" and server_pat_ok:
                pat = self._server_pat
            if not pat or not org_url:
                return None
        return self.target_for(options, org_url, pat)

    def target_for(self, options: JobOptions, organization_url: str, pat: str) -> AdoTarget:
        ado = self._settings
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
        job = await self._store.get_job(job_id)
        if job is None:
            return None
        target = self._target(job_id, job.options)
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
            client = self._by_target[key] = AdoClient(self._session, target, gate)
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
                self._server_pat if may_use_server_pat(options.organization_url, self._settings) else None
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
                        f"put the PAT in the environment variable {self._settings.pat_env} (or a systemd "
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
        return await AdoClient(self._session, target, gate).check(include_qa=include_qa)

    def gate_snapshots(self) -> dict[str, Any]:
        return {f"ado-{name}": g.snapshot() for name, g in self._gates.items()}

    def work_item_url(self, job_id: str, ado_id: int) -> str | None:
        client = self._clients.get(job_id)
        return client.work_item_url(ado_id) if client else None


def _identity(organization_url: str, pat: str) -> str:
    """One rate gate per organization + PAT; a digest, so the PAT is not the key."""
    return hashlib.sha256(f"{organization_url}\n{pat}".encode()).hexdigest()[:16]
