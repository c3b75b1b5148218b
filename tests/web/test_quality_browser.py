"""The quality panel and the vision advice in a real Chromium (Playwright): each metric with its
target, what fell short with links that open the offending items in the tree, and advice as you type."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import FakeServer
from tests.web.conftest import make_settings
from tests.web.test_browser import DONE, Site, _serve, _submit, browser, site  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser
StartFake = Callable[..., Awaitable[FakeServer]]


async def test_the_quality_panel_shows_every_metric_on_target(browser: Any, site: Site) -> None:  # noqa: F811
    """An offline job's page shows the quality panel with all eleven metrics on target."""
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await _submit(page, site.url)
    await page.wait_for_function(DONE, timeout=15_000)
    await page.locator("#quality-panel").wait_for(state="visible", timeout=15_000)
    assert await page.locator("#quality-body tr").count() == 11
    assert await page.locator("#quality-body tr.short").count() == 0
    assert (await page.inner_text("#quality-summary")).startswith("All 11 metrics on target")
    assert errors == []


async def test_shortfalls_link_to_the_offending_items(
    browser: Any,  # noqa: F811
    fake_llm: StartFake,
    tmp_path: Path,
) -> None:
    """A backlog from a model writing random words shows metrics short of target, and a shortfall's link
    opens and marks the offending item in the tree."""
    server = await fake_llm()
    settings = make_settings(
        tmp_path,
        llm={"provider": "openai", "base_url": server.base_url, "api_key_env": None, "max_attempts": 2},
        azure_devops={"target": "none"},
    )
    async for served in _serve(settings):
        page = await browser.new_page()
        await _submit(page, served.url)
        await page.wait_for_function(DONE, timeout=20_000)
        await page.locator("#quality-panel").wait_for(state="visible", timeout=15_000)
        short = page.locator("#quality-short li:has(a.offender)").first  # random words miss the goal
        metric = await short.get_attribute("data-metric")
        assert await page.locator(f"#quality-body tr[data-metric={metric}].short").count() == 1
        link = short.locator("a.offender").first
        item_id = await link.get_attribute("data-item")
        await link.click()
        story = page.locator(f"#item-{item_id}")
        await page.wait_for_function(  # a function, not an expression: the page's CSP forbids eval
            "(id) => document.getElementById('item-' + id).classList.contains('flagged')", arg=item_id
        )
        assert await story.is_visible()
        assert await story.get_attribute("data-kind") in ("story", "task", "test_case")


async def test_advice_appears_as_the_vision_is_typed(browser: Any, site: Site) -> None:  # noqa: F811
    """Typing a vague vision shows what it lacks under the text box; the submit button stays enabled."""
    page = await browser.new_page()
    await page.goto(site.url)
    await page.fill("#vision", "A seamless, best-in-class experience for everyone.")
    await page.locator("#vision-advice li").first.wait_for(timeout=10_000)
    text = await page.inner_text("#vision-advice")
    assert "No target users" in text and "No measurable success metric" in text and "too vague" in text
    assert await page.locator("#submit-job").is_enabled()
    await page.fill("#vision", "Drivers log repairs in the app. Breakdowns down 30% in a year.")
    await page.wait_for_function(
        "() => document.querySelector('#vision-advice').textContent.includes('names its users')"
    )
