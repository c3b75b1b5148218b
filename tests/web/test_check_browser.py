"""The "Check connection" button in a real Chromium (Playwright): the pre-flight of the chosen target,
shown under the form, under the page's Content-Security-Policy."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.test_browser import Site, browser, site  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser


async def test_check_connection_reports_the_embedded_emulator_all_well(browser: Any, site: Site) -> None:  # noqa: F811
    """Pressing the button shows "All is well" with what was checked, and no script error or CSP report."""
    page = await browser.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    await page.goto(site.url)
    await page.get_by_role("button", name="Check connection").click()
    result = page.locator("#check-result")
    await page.wait_for_function(
        "() => document.querySelector('#check-result').textContent.includes('All is well')"
    )
    text = await result.inner_text()
    assert "✓ project" in text and "✓ Test Plans access" in text
    assert await page.get_by_role("button", name="Check connection").is_enabled()
    assert problems == []
