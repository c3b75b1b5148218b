"""The web UI in a real Chromium (Playwright): submit a job, watch the bar reach 100 %, open the tree,
follow a work item link, fail uploads in the emulator and retry from the page, and the polling fallback."""

from __future__ import annotations

import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from emulator.config import FaultConfig
from service.composition import Services, build_services
from service.settings import Settings
from tests.fakes.emulator_control import set_faults
from tests.web.conftest import make_settings
from web.app import create_app
from web.keys import STREAMS

pytestmark = pytest.mark.browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VISION = "# Bike shop\nCustomers book repairs online. Mechanics see the repair queue."
DONE = "() => document.querySelector('#progress-bar').getAttribute('aria-valuenow') === '100'"


def _need_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI is set but Chromium is missing at {CHROMIUM}; install Debian's chromium package")
    pytest.skip(
        "browser tests skipped: Chromium is not installed (apt-get install chromium) and CI is not set"
    )


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    _need_chromium()
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


class Site(NamedTuple):
    url: str
    services: Services
    app: web.Application


async def _serve(settings: Settings) -> AsyncIterator[Site]:
    async with build_services(settings, {}, backoff_base=0.01) as services:
        app = create_app(settings, services)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        try:
            yield Site(str(server.make_url("/")), services, app)
        finally:
            await server.close()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    # emulator.control: the retry test sets the embedded emulator's faults (with its PAT)
    async for served in _serve(make_settings(tmp_path, emulator={"control": True})):
        yield served


async def _submit(page: Any, url: str, vision: str = VISION, mode: str = "streaming") -> None:
    """Fill the form and submit it; the page's default upload mode is review, these tests stream."""
    await page.goto(url)
    await page.fill("#vision", vision)
    await page.select_option("#upload-mode", mode)
    await page.uncheck("#include-qa")
    await page.focus("#submit-job")
    await page.keyboard.press("Enter")  # keyboard-usable: a real submit button
    await page.wait_for_url("**/#/jobs/*")


async def test_submit_watch_progress_open_tree_and_follow_a_work_item(browser: Any, site: Site) -> None:
    """A job submitted in the form reaches 100 %, its tree expands to tasks, and a work item link opens
    the emulator's page for that item; tree nodes are updated in place, never re-rendered; the page
    works under the service's Content-Security-Policy (no violation is reported)."""
    url, services = site.url, site.services
    assert services.emulator is not None  # slow uploads down so the page watches the job live
    services.emulator.state.set_faults(FaultConfig(latency_seconds=0.1, routes=frozenset({"any"})))
    context = await browser.new_context()
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None)
    await _submit(page, url)
    first_epic = page.locator("#tree > li").first
    await first_epic.wait_for()
    epic_handle = await first_epic.element_handle()
    await page.wait_for_function(DONE, timeout=15_000)
    await page.wait_for_function("() => document.querySelector('#job-status').textContent === 'completed'")
    assert (await page.inner_text("#progress-text")).startswith("100%")
    assert "uploaded as #" in await page.inner_text("#feed")  # items arrived live over SSE
    assert await epic_handle.evaluate("node => node.isConnected")  # the same node, updated in place
    await page.click("#expand-all")
    task = page.locator("#tree li[data-kind=task]").first
    assert await task.is_visible()
    assert await page.locator("#tree .badge.uploaded").count() == await page.locator("#tree .badge").count()
    assert int(await page.inner_text("#count-task td[data-count=uploaded]")) > 0
    link = page.locator("#tree li[data-kind=story] a.ado-link").first
    ado_id = (await link.inner_text()).lstrip("#")
    async with context.expect_page() as opened:
        await link.click()
    item_page = await opened.value
    await item_page.wait_for_load_state()
    assert f"{ado_id}:" in await item_page.inner_text("h1")
    await page.click("text=← All jobs")
    await page.locator("#jobs-list li").first.wait_for()
    assert "Bike shop" in await page.inner_text("#jobs-list")
    assert errors == []
    await context.close()


async def test_a_failed_upload_is_shown_and_retried_from_the_page(browser: Any, site: Site) -> None:
    """With every create failing in the emulator the page shows dead items with their error; after the
    fault is cleared, the Retry button uploads everything."""
    url, services = site.url, site.services
    assert services.emulator is not None and services.relay is not None
    services.relay.max_attempts = 1
    emulator = services.emulator
    await set_faults(emulator, {"error_500": 1.0})
    page = await browser.new_page()
    await _submit(page, url)
    await page.wait_for_function(
        "() => document.querySelector('#job-status').textContent === 'completed with errors'", timeout=15_000
    )
    await page.click("#expand-all")
    dead = page.locator("#tree .badge.dead").first
    await dead.wait_for()
    assert await page.locator("#tree .err:not([hidden])").count() > 0
    assert int(await page.inner_text("#count-epic td[data-count=failed]")) > 0
    await set_faults(emulator, {})
    retry = page.locator("#retry-btn")
    await retry.wait_for(state="visible")
    await retry.click()
    await page.wait_for_function(
        "() => document.querySelector('#job-status').textContent === 'completed'", timeout=15_000
    )
    await page.wait_for_function(
        "() => [...document.querySelectorAll('#tree .badge')].every(b => b.classList.contains('uploaded'))",
        timeout=15_000,
    )
    assert await page.locator("#tree .err:not([hidden])").count() == 0
    assert await retry.is_hidden()
    await page.close()


async def test_polling_fallback_on_a_narrow_screen(browser: Any, tmp_path: Path) -> None:
    """With SSE disabled the page falls back to ETag polling and still reaches 100 %; on a phone-sized
    screen nothing scrolls sideways."""
    settings = make_settings(tmp_path, progress={"enable_sse": False})
    async for url, _, _ in _serve(settings):
        page = await browser.new_page(viewport={"width": 375, "height": 740})
        await _submit(page, url)
        await page.wait_for_function(DONE, timeout=15_000)
        assert await page.inner_text("#live-mode") in ("polling", "finished")
        wide = await page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
        assert not wide
        await page.close()


async def test_the_page_recovers_when_the_stream_drops_mid_job(browser: Any, site: Site) -> None:
    """When the server drops every stream mid-job the page keeps moving (polling), reconnects to the
    stream, and ends with the full tree and no event shown twice."""
    url, services = site.url, site.services
    assert services.emulator is not None
    services.emulator.state.set_faults(FaultConfig(latency_seconds=0.1, routes=frozenset({"any"})))
    page = await browser.new_page()
    modes: list[str] = []
    await page.expose_function("reportMode", lambda mode: modes.append(str(mode)))
    await page.add_init_script("""
        new MutationObserver((records) => {
          for (const r of records) window.reportMode(`${r.oldValue} -> ${r.target.dataset.mode}`);
        }).observe(document, {subtree: true, attributeFilter: ["data-mode"], attributeOldValue: true});
    """)
    await _submit(page, url)
    await page.wait_for_function("() => document.querySelector('#live-mode').textContent === '● live'")
    await page.wait_for_function("() => document.querySelectorAll('#feed li').length > 5")
    site.app[STREAMS].stop_all("dropped")  # the server ends every stream; EventSource reconnects
    await page.wait_for_function(DONE, timeout=20_000)
    await page.wait_for_function("() => document.querySelector('#job-status').textContent === 'completed'")
    assert any(m.startswith("live -> ") and not m.endswith("finished") for m in modes)  # noticed the drop
    assert sum(m.endswith("-> live") for m in modes) >= 2, modes  # and came back live
    feed = [line for line in (await page.inner_text("#feed")).splitlines() if "uploaded as #" in line]
    assert len(feed) == len(set(feed))
    await page.click("#expand-all")
    assert await page.locator("#tree .badge.uploaded").count() == await page.locator("#tree .badge").count()
    generated = 0
    for kind in ("epic", "feature", "story", "task"):
        generated += int(await page.inner_text(f"#count-{kind} td[data-count=generated]"))
    assert await page.locator("#tree li").count() == generated
    await page.close()
