"""Discovery: once per (organization, PAT, project), and no sibling request's Retry-After is lost."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from emulator.config import FaultConfig
from emulator.control import snapshot
from emulator.routing import EMULATOR_STATE
from emulator.server import serve
from hardware.aimd import AdaptiveLimiter
from outbox.ado.errors import AdoThrottled
from outbox.store import Store
from service.ado_clients import AdoClients
from service.requests import JobRequest, resolve_options
from service.settings import AzureDevOpsSettings, Settings
from tests.jobrows import VISION
from tests.outbox.test_ado_support import ServerFactory, emulator_config, rig
from tests.outbox.test_upload_support import PAT, PROJECT
from tests.outbox.test_upload_support import emulator_config as upload_emulator_config


async def test_sibling_retry_after_is_read_when_one_discovery_request_is_throttled(
    aiohttp_server: ServerFactory,
) -> None:
    """When one per-type fields request gets a 429, its siblings still finish and their Retry-After
    reaches the gate (a task group would cancel them unread)."""
    # meta calls: 1 project, 2 types, 3.. the fields of each type in parallel: the 3rd gets a 429 at
    # once, the 4th a delayed 200 carrying Retry-After.
    faults = FaultConfig(
        every_nth={"throttle": 3, "delay": 4},
        limit=2,
        routes=frozenset({"meta"}),
        retry_after_seconds=0.01,
        delay_seconds=0.05,
    )
    async with rig(aiohttp_server, emulator_config(faults=faults)) as r:
        with pytest.raises(AdoThrottled):
            await r.client.prepare()
        injected = dict(snapshot(r.server.app[EMULATOR_STATE])["faults_injected"])
        assert (await r.client.prepare()).process == "Agile"  # the next attempt succeeds
    assert injected == {"throttle": 1, "delay": 1}
    assert r.gate.throttles == 2  # the 429 and the delayed sibling's Retry-After


async def test_discovery_runs_once_per_target_however_many_jobs_and_tasks_ask(tmp_path: Path) -> None:
    """Concurrent relay tasks of two jobs on one (organization, PAT, project) share one client that
    discovers the project once; another project gets its own."""
    emulator = await serve(upload_emulator_config(), "127.0.0.1", 0)
    settings = Settings(
        azure_devops=AzureDevOpsSettings(target="ado", organization_url=emulator.url, project=PROJECT)
    )
    try:
        async with Store.open(tmp_path / "db.sqlite3") as store, aiohttp.ClientSession() as session:
            uploads = AdoClients(
                store=store,
                session=session,
                settings=settings.azure_devops,
                gate_factory=lambda name: AdaptiveLimiter(4, name=name),
                env={"AZURE_DEVOPS_PAT": PAT},
            )
            options = resolve_options(JobRequest(vision="v"), settings)
            for job in ("a", "b"):
                await store.create_job(job, VISION, options, {})
            clients = await asyncio.gather(*(uploads.client_for(j) for j in ("a", "b", "a", "b", "a")))
            assert all(c is clients[0] for c in clients)
            first = await uploads.ado_client("a")
            assert first is clients[0] and first is not None
            profiles = await asyncio.gather(*(first.prepare() for _ in range(3)))
            assert first.discoveries == 1
            assert {p.project_name for p in profiles} == {PROJECT}
            other = resolve_options(JobRequest(vision="v", azure_devops={"project": "Other"}), settings)
            await store.create_job("c", VISION, other, {})
            assert await uploads.ado_client("c") is not first
    finally:
        await emulator.close()
