"""Hole 1: the server's PAT must never reach a URL a job names. A real aiohttp listener on loopback plays
the attacker's organization and records every request it receives."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from service.composition import build_services
from service.errors import TargetRefused
from service.requests import JobRequest
from tests.ops.conftest import VISION, AppFactory, make_settings
from vocab import TERMINAL_JOB_STATES
from web.app import create_app

SERVER_PAT = "server-pat-that-must-stay-home-0123"
JOB_PAT = "job-pat-brought-by-the-job-4567"


class Listener:
    """An HTTP server that records what it receives and answers 500 with a long, hostile JSON body."""

    def __init__(self) -> None:
        self.seen: list[dict[str, str]] = []
        self.app = web.Application()
        self.app.router.add_route("*", "/{tail:.*}", self.handle)

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append({"path": request.path, "authorization": request.headers.get("Authorization", "")})
        message = "TF400898: \x1b[2J<script>alert(1)</script> " + "spam " * 4000
        return web.json_response({"message": message}, status=500)


@pytest.fixture
async def listener() -> AsyncIterator[tuple[Listener, str]]:
    spy = Listener()
    server = TestServer(spy.app, host="127.0.0.1")
    await server.start_server()
    try:
        yield spy, str(server.make_url("/evilorg")).rstrip("/")
    finally:
        await server.close()


def _job(org_url: str, pat: str | None = None) -> dict[str, Any]:
    ado: dict[str, Any] = {"target": "ado", "organization_url": org_url}
    if pat is not None:
        ado["pat"] = pat
    return {"vision": VISION, "azure_devops": ado, "include_qa": False}


async def test_a_job_naming_another_organization_is_refused_and_the_listener_hears_nothing(
    aiohttp_client: Any, tmp_path: Path, listener: tuple[Listener, str]
) -> None:
    """The probe (a job naming http://127.0.0.1:PORT/evilorg, no PAT, while the server has one) is a
    400 naming the setting, and the listener receives no request at all."""
    spy, evil = listener
    settings = make_settings(
        tmp_path, azure_devops={"target": "ado", "organization_url": "https://dev.azure.com/home"}
    )
    async with build_services(settings, {"AZURE_DEVOPS_PAT": SERVER_PAT}, backoff_base=0.01) as services:
        client = await aiohttp_client(create_app(settings, services))
        resp = await client.post("/api/jobs", json=_job(evil))
        body = await resp.json()
        assert resp.status == 400 and body["error"]["code"] == "target_not_allowed"
        assert "azure_devops.allowed_organizations" in body["error"]["message"]
        assert body["error"]["details"][0]["field"] == "azure_devops.organization_url"
        assert await services.store.list_jobs() == []
        await asyncio.sleep(0.05)  # give a stray upload the chance to show itself
    assert spy.seen == []


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "not a url", "ftp://dev.azure.com/x", "http://dev.azure.com/home"]
)
async def test_non_https_and_non_urls_are_refused(make_client: AppFactory, url: str) -> None:
    """file://, non-URLs, other schemes and plain http:// to a public host are 400s, nothing stored."""
    client, services = await make_client(
        azure_devops={"target": "ado", "organization_url": "https://dev.azure.com/home"}
    )
    resp = await client.post("/api/jobs", json=_job(url, pat=JOB_PAT))
    assert resp.status == 400, await resp.text()
    assert (await resp.json())["error"]["details"][0]["field"] == "azure_devops.organization_url"
    assert await services.store.list_jobs() == []


async def test_another_allowed_organization_needs_the_jobs_own_pat(
    tmp_path: Path, listener: tuple[Listener, str]
) -> None:
    """An organization in allowed_organizations that is not the configured one never gets the server's
    PAT: without a PAT of its own the job is refused; with one, only that PAT is sent; the listener's
    hostile error body reaches the job summarised (one short line, no control characters)."""
    spy, other = listener
    settings = make_settings(
        tmp_path,
        azure_devops={
            "target": "ado",
            "organization_url": "https://dev.azure.com/home",
            "allowed_organizations": [other],
            "upload_retry_attempts": 1,
        },
    )
    async with build_services(settings, {"AZURE_DEVOPS_PAT": SERVER_PAT}, backoff_base=0.01) as services:
        with pytest.raises(TargetRefused, match=r"must bring its own azure_devops\.pat"):
            await services.jobs.submit(JobRequest.model_validate(_job(other)))
        job_id = await services.jobs.submit(JobRequest.model_validate(_job(other, pat=JOB_PAT)))
        job = await asyncio.wait_for(services.jobs.wait(job_id), 30)
        items = await services.store.items(job_id)
    assert job.status in TERMINAL_JOB_STATES
    assert spy.seen and all(SERVER_PAT not in json.dumps(r) for r in spy.seen)
    # The hostile answer stops the job at its pre-flight check (or, past it, kills items at upload):
    # wherever it is reported, it arrives summarised.
    errors = [i.error or "" for i in items if i.state == "dead"] + [job.error or ""]
    assert job.error is not None
    assert all(len(e) < 600 and "\x1b" not in e and "spam spam" * 100 not in e for e in errors)


async def test_a_stored_job_for_a_foreign_organization_never_gets_the_server_pat(
    tmp_path: Path, listener: tuple[Listener, str]
) -> None:
    """Defence in depth: a job already in the database (from before this rule) that names a foreign
    organization waits for credentials instead of uploading with the server's PAT."""
    spy, evil = listener
    home = {"target": "ado", "organization_url": "https://dev.azure.com/home", "upload_retry_attempts": 1}
    settings = make_settings(tmp_path, azure_devops={**home, "allowed_organizations": [evil]})
    async with build_services(settings, {"AZURE_DEVOPS_PAT": SERVER_PAT}, backoff_base=0.01) as services:
        job_id = await services.jobs.submit(JobRequest.model_validate(_job(evil, pat=JOB_PAT)))
        await asyncio.wait_for(services.jobs.wait(job_id), 30)
    spy.seen.clear()
    narrowed = make_settings(tmp_path, azure_devops=home)  # the operator removed the organization
    async with build_services(narrowed, {"AZURE_DEVOPS_PAT": SERVER_PAT}, backoff_base=0.01) as services:
        await services.jobs.retry_uploads(job_id)
        job = await asyncio.wait_for(services.jobs.wait(job_id), 30)
    assert job.status == "needs_credentials"
    assert spy.seen == []
