"""Webhook notifications: delivered once through failures, never holding a job up, the URL never logged."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from structlog.testing import capture_logs

from outbox.store import Store
from service.composition import build_services
from service.notify import Notifier, message
from service.requests import JobRequest
from service.settings import NotificationSettings, Settings
from tests.conftest import VISION, make_settings
from tests.jobrows import OPTIONS
from vocab import JobStatus
from vocab.vision import Vision

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SECRET_PATH = "/services/T000/B000/s3cr3t-token"


@pytest.fixture
async def webhook() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """``await webhook(handler)``: a real HTTP server on loopback; returns its URL (with a secret path)."""
    servers: list[TestServer] = []

    async def start(handler: Handler) -> str:
        app = web.Application()
        app.router.add_post(SECRET_PATH, handler)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url(SECRET_PATH))

    yield start
    for server in servers:
        await server.close()


def _settings(tmp_path: Path, url: str, **notify: Any) -> Settings:
    section = {"webhook_url": url, "retry_base_seconds": 0.001, **notify}
    return make_settings(tmp_path, notifications=section, server={"public_url": "https://backlog.example"})


async def test_delivered_once_after_two_failures_without_delaying_the_job(
    tmp_path: Path, webhook: Callable[[Handler], Awaitable[str]]
) -> None:
    """A webhook answering 500 twice then 200 gets the notice three times and it counts as delivered
    once; the job completes while the first attempt is still unanswered (delivery never holds it up)."""
    job_done = asyncio.Event()
    bodies: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        if len(bodies) == 1:
            await job_done.wait()  # held until the job has finished without waiting for us
        return web.Response(status=500 if len(bodies) <= 2 else 200)

    settings = _settings(tmp_path, await webhook(handler))
    async with build_services(settings, {}, with_relay=False, backoff_base=0.001) as services:
        job_id = await services.jobs.submit(JobRequest(vision=VISION))
        async with asyncio.timeout(60):
            job = await services.jobs.wait(job_id)
        assert job.status == JobStatus.COMPLETED
        job_done.set()
        notifier = services.notifier
        assert notifier is not None
        async with asyncio.timeout(10):
            await notifier.idle()
        assert (notifier.delivered, notifier.abandoned, len(bodies)) == (1, 0, 3)
    text = bodies[-1]["text"]
    assert set(bodies[-1]) == {"text"}
    assert "ToolShare" in text and "has completed" in text
    assert f"https://backlog.example/#/jobs/{job_id}" in text
    assert " items (" in text and "uploaded" in text


async def test_a_webhook_that_never_answers_is_given_up_and_the_job_finishes(
    tmp_path: Path, webhook: Callable[[Handler], Awaitable[str]]
) -> None:
    """A webhook that accepts the connection but never answers: the job still finishes promptly, the
    notifier gives up after its attempts with a log line naming only the host, never the URL's path."""
    hang = asyncio.Event()

    async def handler(request: web.Request) -> web.Response:
        await hang.wait()
        return web.Response()

    settings = _settings(tmp_path, await webhook(handler), timeout_seconds=0.05, max_attempts=2)
    with capture_logs() as logs:
        async with build_services(settings, {}, with_relay=False, backoff_base=0.001) as services:
            job_id = await services.jobs.submit(JobRequest(vision=VISION))
            async with asyncio.timeout(60):
                job = await services.jobs.wait(job_id)
            assert job.status == JobStatus.COMPLETED
            notifier = services.notifier
            assert notifier is not None
            async with asyncio.timeout(10):
                await notifier.idle()
            assert (notifier.delivered, notifier.abandoned) == (0, 1)
        hang.set()
    given_up = [e for e in logs if e["event"] == "notification_abandoned"]
    assert len(given_up) == 1 and given_up[0]["webhook_host"] == "127.0.0.1"
    assert given_up[0]["attempts"] == 2
    assert not any("s3cr3t" in repr(e) for e in logs)


async def test_retry_after_is_honoured_and_a_4xx_is_not_retried(
    tmp_path: Path, webhook: Callable[[Handler], Awaitable[str]]
) -> None:
    """A 429 with Retry-After waits what it says (not the backoff); a 404 ends delivery at once."""
    statuses = [429, 200, 404]
    seen: list[int] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(statuses[len(seen)])
        return web.Response(status=seen[-1], headers={"Retry-After": "7"} if seen[-1] == 429 else {})

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    url = await webhook(handler)
    settings = NotificationSettings.model_validate({"webhook_url": url, "retry_base_seconds": 0.5})
    async with (
        Store.open(tmp_path / "db.sqlite3") as store,
        aiohttp.ClientSession() as session,
    ):
        await store.create_job("j1", Vision(title="Shop", vision="v"), OPTIONS, {})
        async with Notifier(
            settings, store=store, session=session, page_url="http://h:1/", sleep=sleep
        ) as notifier:
            notifier.notify("j1", JobStatus.AWAITING_REVIEW)
            notifier.notify("j1", JobStatus.RUNNING)  # nobody is told about this one
            notifier.notify("j1", JobStatus.FAILED)
            async with asyncio.timeout(10):
                await notifier.idle()
            assert (notifier.delivered, notifier.abandoned) == (1, 1)
    assert seen == [429, 200, 404] and slept == [7.0]


def test_message_names_the_job_status_counts_and_link() -> None:
    """The text has the title, what happened, the item counts (uploaded, failed) and the page link."""
    counts = {"epic": {"uploaded": 2}, "story": {"uploaded": 5, "dead": 1}}
    text = message("Shop", JobStatus.COMPLETED_WITH_ERRORS, counts, "http://h/#/jobs/j")
    assert text.startswith("backlogd: job \u201cShop\u201d has completed with errors")
    assert "8 items (2 epic, 6 story); 7 uploaded, 1 failed" in text and text.endswith("http://h/#/jobs/j")


def test_the_webhook_url_is_a_secret_setting() -> None:
    """The URL never shows in the settings' repr or JSON dump, and a non-http URL is refused."""
    settings = NotificationSettings.model_validate({"webhook_url": "https://hooks.example" + SECRET_PATH})
    assert "s3cr3t" not in repr(settings) and "s3cr3t" not in settings.model_dump_json()
    with pytest.raises(ValueError, match="http"):
        NotificationSettings.model_validate({"webhook_url": "file:///etc/passwd"})


async def test_a_job_awaiting_review_notifies_that_it_is_ready(
    tmp_path: Path, webhook: Callable[[Handler], Awaitable[str]]
) -> None:
    """A review-mode job tells the webhook it is ready for review, with nothing uploaded yet."""
    bodies: list[dict[str, Any]] = []

    async def handler(request: web.Request) -> web.Response:
        bodies.append(await request.json())
        return web.Response(status=204)

    settings = _settings(tmp_path, await webhook(handler))
    settings = settings.model_copy(
        update={
            "azure_devops": settings.azure_devops.model_copy(
                update={"target": "emulator", "upload_mode": "review"}
            )
        }
    )
    async with build_services(settings, {}, backoff_base=0.001) as services:
        job_id = await services.jobs.submit(JobRequest(vision=VISION))
        async with asyncio.timeout(60):
            assert (await services.jobs.wait(job_id)).status == JobStatus.AWAITING_REVIEW
        assert services.notifier is not None
        async with asyncio.timeout(10):
            await services.notifier.idle()
    assert len(bodies) == 1
    assert (
        "\u201cToolShare\u201d is ready for review" in bodies[0]["text"]
        and "; 0 uploaded." in bodies[0]["text"]
    )
