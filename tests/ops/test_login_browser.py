"""The web UI behind a token, in a real Chromium: the login form trades the token for an HttpOnly,
SameSite=Strict cookie; the page and its EventSource then work with no token in any URL."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from emulator.config import FaultConfig
from service.composition import build_services
from tests.ops.conftest import TOKEN, VISION, make_settings
from web.app import create_app
from web.auth import COOKIE

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DONE = "() => document.querySelector('#progress-bar').getAttribute('aria-valuenow') === '100'"


def _need_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but Chromium is missing at {CHROMIUM}")
    pytest.skip("Chromium is not installed (apt-get install chromium)")


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    """Debian's Chromium through Playwright (skipped without it, unless CI is set)."""
    _need_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            yield chromium
        finally:
            await chromium.close()


async def test_login_then_submit_and_watch_live_without_the_token_in_a_url(
    browser: Any, tmp_path: Any
) -> None:
    """The page asks for the token, refuses a wrong one, logs in, runs a job to 100 % over EventSource;
    the session cookie is HttpOnly and SameSite=Strict, scripts cannot read it, and no request URL
    carries the token; logging out brings the form back."""
    settings = make_settings(tmp_path, server={"api_token_env": "T"}, azure_devops={"target": "emulator"})
    async with build_services(settings, {}, backoff_base=0.01) as services:
        assert services.emulator is not None  # slow uploads: the job is still running when the page streams
        services.emulator.state.set_faults(FaultConfig(latency_seconds=0.1, routes=frozenset({"any"})))
        server = TestServer(create_app(settings, services, api_token=TOKEN), host="127.0.0.1")
        await server.start_server()
        try:
            context = await browser.new_context()
            page = await context.new_page()
            urls: list[str] = []
            streams: list[int] = []
            errors: list[str] = []
            page.on("request", lambda req: urls.append(req.url))
            page.on(
                "response", lambda r: streams.append(r.status) if "/api/progress/stream/" in r.url else None
            )
            page.on("pageerror", lambda exc: errors.append(str(exc)))
            await page.goto(str(server.make_url("/")))
            await page.locator("#login-form").wait_for()
            assert not await page.is_visible("#home-view")
            await page.fill("#login-token", "not-the-token-at-all")
            await page.click("#login-submit")
            await page.locator("#login-error").wait_for()
            assert "not the API token" in await page.inner_text("#login-error")
            await page.fill("#login-token", TOKEN)
            await page.click("#login-submit")
            await page.locator("#home-view").wait_for()
            await page.fill("#vision", VISION)
            await page.select_option("#upload-mode", "streaming")  # the form's default is review
            await page.uncheck("#include-qa")
            await page.click("#submit-job")
            await page.wait_for_url("**/#/jobs/*")
            await page.wait_for_function(DONE, timeout=15_000)
            assert 200 in streams  # the EventSource got in with the cookie alone
            cookies = {c["name"]: c for c in await context.cookies()}
            assert cookies[COOKIE]["httpOnly"] and cookies[COOKIE]["sameSite"] == "Strict"
            assert TOKEN not in cookies[COOKIE]["value"]
            assert COOKIE not in await page.evaluate("document.cookie")
            assert not any(TOKEN in u for u in urls)
            await page.click("#logout-btn")
            await page.locator("#login-form").wait_for()
            assert errors == []
            await context.close()
        finally:
            await server.close()
