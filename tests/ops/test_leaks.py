"""Hole 7 (leaks): a closed progress stream frees its per-client slot at once (not at the next
heartbeat), and per-job state (progress, ADO clients, per-job PATs) is freed when the job ends, so
memory stays flat however many jobs the service runs."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from emulator.config import EmulatorConfig
from emulator.server import serve
from service import logs
from service.composition import Services, build_services
from service.progress import Progress
from service.requests import JobRequest
from service.settings import Settings
from tests.ops.conftest import VISION, make_settings
from web.app import create_app

ONE = dict.fromkeys(
    ["max_epics", "max_features_per_epic", "max_stories_per_feature", "max_tasks_per_story"], 1
)


@contextlib.asynccontextmanager
async def served_like_production(settings: Settings) -> AsyncIterator[tuple[str, Services]]:
    """The app behind ``web.AppRunner`` as ``backlogd serve`` runs it: unlike aiohttp's test server,
    a client that goes away does not cancel the handler, so the stream itself must notice."""
    async with build_services(settings, {}, backoff_base=0.01) as services:
        runner = web.AppRunner(create_app(settings, services), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        try:
            yield f"http://{host}:{port}", services
        finally:
            await runner.cleanup()


async def test_a_closed_stream_frees_its_slot_at_once(tmp_path: Path) -> None:
    """With one stream allowed per client and a 15 s heartbeat, closing the stream lets a new one in
    within a fraction of a second (reloading a tab no longer locks the user out)."""
    settings = make_settings(
        tmp_path,
        server={"sse_connections_per_client": 1},
        progress={"heartbeat_seconds": 15},
        azure_devops={"target": "emulator", "upload_mode": "manual"},
    )
    async with served_like_production(settings) as (base, services), aiohttp.ClientSession() as http:
        async with http.post(f"{base}/api/jobs", json={"vision": VISION}) as resp:
            job_id = (await resp.json())["job_id"]
        assert (await services.jobs.wait(job_id)).status == "awaiting_upload"  # open-ended: streams stay
        url = f"{base}/api/progress/stream/{job_id}"
        first = await http.get(url)
        assert first.status == 200
        await first.content.readuntil(b"event: stage")  # the stream is live
        async with http.get(url) as second:
            assert second.status == 429  # the one slot is taken
        first.close()  # the tab is closed: the connection goes away
        loop = asyncio.get_running_loop()
        closed_at, status = loop.time(), 429
        while status == 429 and loop.time() - closed_at < 3:
            async with http.get(url) as again:
                status = again.status
            if status == 429:
                await asyncio.sleep(0.01)
        assert status == 200 and loop.time() - closed_at < 1.0


async def test_per_job_state_is_freed_across_500_jobs(tmp_path: Path) -> None:
    """After 500 jobs, each with its own PAT (half uploading with it to an organization, half not
    uploading), the job manager and the upload coordinator hold nothing for any of them: no progress,
    client, PAT or rate gate stays."""
    organization = await serve(EmulatorConfig(), "127.0.0.1", 0)  # any non-empty PAT is accepted
    settings = make_settings(
        tmp_path,
        azure_devops={"target": "ado", "organization_url": organization.url},
        workflow={"limits": ONE},
        server={"max_queued_jobs": 1000, "max_concurrent_jobs": 8},
        logging={"level": "error"},
    )
    try:
        async with build_services(settings, {}, backoff_base=0.01) as services:
            assert services.uploads is not None
            secrets_before = len(logs._SECRETS)

            async def one(n: int) -> str:
                ado: dict[str, Any] = {"target": "ado" if n % 2 else "none", "pat": f"per-job-pat-{n:04d}"}
                request = JobRequest.model_validate({"vision": VISION, "azure_devops": ado})
                job = await services.jobs.wait(await services.jobs.submit(request))
                assert job.status == "completed", job.error
                return job.id

            ours: set[str] = set()
            for batch in range(25):
                ours.update(await asyncio.gather(*(one(batch * 20 + i) for i in range(20))))
            assert len(ours) == 500 and len(organization.state.items) == 250 * 4  # they did upload
            assert services.jobs.tracked_jobs() == 0
            assert services.uploads.tracked_jobs() == 0
            assert services.uploads.gate_snapshots() == {}  # every per-job PAT's rate gate went too
            assert len(logs._SECRETS) == secrets_before  # no per-job PAT kept for redaction
            gc.collect()
            progress = [o for o in gc.get_objects() if isinstance(o, Progress) and o.job_id in ours]
            assert progress == []
    finally:
        await organization.close()
