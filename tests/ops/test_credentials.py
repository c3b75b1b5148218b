"""A PAT sent with a job lives in memory only: after a restart the job does not fall back to the
server's PAT; it waits in ``needs_credentials`` until ``retry-uploads`` brings the PAT again."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from service.composition import build_services
from service.requests import JobRequest
from tests.ops.conftest import VISION, make_settings
from web.app import create_app


async def test_a_per_job_pat_is_forgotten_on_restart_until_retry_uploads_brings_it(
    tmp_path: Path, emulator: Any, aiohttp_client: Any
) -> None:
    """Submitted with its own PAT, then the service restarts before uploading: the resumed job ends
    ``needs_credentials`` (the server PAT is not used for it, nothing reaches ADO, the PAT is nowhere in
    the database); ``retry-uploads`` with the PAT uploads everything."""
    job_pat, server_pat = "job-pat-7f3a9c1e5b", "server-pat-2d8e4f6a0c"
    ado = await emulator(pats=frozenset({job_pat, server_pat}))
    settings = make_settings(
        tmp_path, azure_devops={"target": "ado", "organization_url": ado.url, "upload_mode": "streaming"}
    )
    env = {"AZURE_DEVOPS_PAT": server_pat}
    async with build_services(settings, env) as services:
        request = JobRequest.model_validate({"vision": VISION, "azure_devops": {"pat": job_pat}})
        job_id = await services.jobs.submit(request, start=False)  # the process stops before it runs

    async with build_services(settings, env, backoff_base=0.01) as services:
        assert await services.jobs.resume_unfinished() == [job_id]
        job = await services.jobs.wait(job_id)
        assert job.status == "needs_credentials"
        assert len(ado.state.items) == 0
        client = await aiohttp_client(create_app(settings, services))
        resp = await client.post(f"/api/jobs/{job_id}/retry-uploads", json={"pat": job_pat})
        assert resp.status == 202
        job = await services.jobs.wait(job_id)
        assert job.status == "completed"
        items = await services.store.items(job_id)
        assert items and all(i.state == "uploaded" for i in items)
        assert len(ado.state.items) == len(items)
        await client.close()
    db = Path(settings.database.path)
    for path in db.parent.glob(db.name + "*"):
        assert job_pat.encode() not in path.read_bytes()
    with sqlite3.connect(db) as conn:
        (options,) = conn.execute("SELECT options FROM jobs WHERE id = ?", (job_id,)).fetchone()
    assert '"pat_source": "request"' in options or '"pat_source":"request"' in options
