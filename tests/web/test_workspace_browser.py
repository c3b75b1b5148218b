"""The job page as a workspace, in a real Chromium (Playwright): search and filters with a count,
keyboard navigation, the item detail pane with the vision sentences it cites, totals per epic and
feature, the traceability view, a long title on one row, the ADO fields only for Azure DevOps, and a
phone-sized screen with no horizontal scroll."""

from __future__ import annotations

from typing import Any

import pytest

from tests.web.test_browser import DONE, Site, _submit, browser, site  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser
COMPLETED = "() => document.querySelector('#job-status').textContent === 'completed'"


async def _finished_job(page: Any, url: str) -> None:
    """Run a small streaming job from the form and wait until the page shows it completed."""
    await _submit(page, url)
    await page.wait_for_function(DONE, timeout=15_000)
    await page.wait_for_function(COMPLETED, timeout=15_000)


async def test_search_filters_count_and_keyboard(browser: Any, site: Site) -> None:  # noqa: F811
    """Typing in the search shows only matching items (and their ancestors) with a count; the kind
    filter narrows to one kind; / focuses the search; arrows and j/k move between rows, Enter opens
    the detail pane and Esc closes it, giving the focus back to the row."""
    page = await browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await _finished_job(page, site.url)
    task_title = await page.locator("#tree li[data-kind=task] .title").first.text_content()
    await page.keyboard.press("/")
    assert await page.evaluate("document.activeElement.id") == "search-text"
    await page.keyboard.type(task_title)
    await page.wait_for_function(
        "() => document.querySelector('#search-count').textContent.endsWith('match')"
    )
    visible = page.locator("#tree li[data-kind=task]:visible")
    assert await visible.count() == 1 and await visible.locator(".title").text_content() == task_title
    assert await page.locator("#tree li[data-kind=epic]:visible").count() == 1  # its ancestor stays
    await page.fill("#search-text", "")
    await page.select_option("#filter-kind", "story")
    assert await page.inner_text("#search-count") == "4 matches"
    await page.click("#search-clear")
    assert await page.inner_text("#search-count") == ""
    assert await page.locator("#tree > li:visible").count() == 2
    first = page.locator("#tree summary.row").first
    await first.focus()
    await page.keyboard.press("ArrowRight")  # unfold the first epic
    await page.keyboard.press("j")
    second_id = await page.evaluate("document.activeElement.dataset.id")
    assert await page.get_attribute("#tree li[data-kind=feature]", "data-id") == second_id
    await page.keyboard.press("k")
    await page.keyboard.press("ArrowDown")
    await page.keyboard.press("Enter")
    await page.locator("#pane").wait_for(state="visible")
    assert await page.text_content("#pane-kind") == "Feature"
    await page.keyboard.press("Escape")
    await page.locator("#pane").wait_for(state="hidden")
    assert await page.evaluate("document.activeElement.dataset.id") == second_id
    assert errors == []


async def test_detail_pane_totals_and_traceability(browser: Any, site: Site) -> None:  # noqa: F811
    """A story's pane shows its description, acceptance criteria, points and the text of the vision
    sentences it cites, its upload state and work item link; epics show totals (items, points, hours);
    the traceability view lists every vision sentence with the stories covering it."""
    page = await browser.new_page()
    await _finished_job(page, site.url)
    await page.wait_for_function("() => document.querySelector('#tree .totals').textContent !== ''")
    totals = await page.locator("#tree li[data-kind=epic] .totals").first.text_content()
    assert totals.startswith("7 items · ") and totals.endswith(" h")  # 1 feature, 2 stories, 4 tasks
    await page.click("#expand-all")
    await page.locator("#tree li[data-kind=story] .title").first.click()
    pane = page.locator("#pane")
    await pane.wait_for(state="visible")
    assert await page.text_content("#pane-kind") == "Story"
    text = await pane.inner_text()
    for heading in ("Description", "Acceptance criteria", "Points:", "Sources in the vision", "uploaded"):
        assert heading in text, heading
    assert "Customers book repairs online" in text or "Mechanics see the repair queue" in text
    assert await pane.locator("a[href*='/_workitems/edit/']").count() == 1
    await page.click("#pane-close")
    await page.click("#trace-view summary")
    rows = page.locator("#trace-list > li")
    await rows.first.wait_for()  # rendered when opened
    assert await rows.count() >= 2
    assert await page.locator("#trace-list > li.covered a[data-item]").count() >= 1
    await page.locator("#trace-list a[data-item]").first.click()  # a covering story opens in the pane
    await pane.wait_for(state="visible")
    assert await page.text_content("#pane-kind") == "Story"


async def test_phone_layout_long_titles_and_ado_fields(browser: Any, site: Site) -> None:  # noqa: F811
    """At 390 px nothing scrolls sideways (tree unfolded, pane open as a full-screen sheet); a very long
    title wraps inside its column with the badge on the title's first line, not under the kind label;
    the Azure DevOps fields show only when the target is Azure DevOps."""
    page = await browser.new_page(viewport={"width": 390, "height": 844})
    await page.goto(site.url)
    assert await page.locator("#ado-fields").is_hidden()
    await page.select_option("#target", "emulator")
    assert await page.locator("#ado-fields").is_hidden()
    await page.select_option("#target", "ado")
    assert await page.locator("#ado-fields").is_visible()
    await page.select_option("#target", "")
    await _finished_job(page, site.url)
    await page.click("#expand-all")
    wide = "() => document.documentElement.scrollWidth > window.innerWidth"
    assert not await page.evaluate(wide)
    story = page.locator("#tree li[data-kind=story]").first
    await story.locator(".title").first.evaluate("t => { t.textContent = 'A very long title '.repeat(12); }")
    kind_box = await story.locator(".kind").first.bounding_box()
    badge_box = await story.locator(".badge").first.bounding_box()
    assert abs(badge_box["y"] - kind_box["y"]) < kind_box["height"]  # same line as the kind label
    assert not await page.evaluate(wide)
    await story.locator(".title").first.click()
    pane = page.locator("#pane")
    await pane.wait_for(state="visible")
    box = await pane.bounding_box()
    assert box["x"] == 0 and box["width"] == 390
    assert not await page.evaluate(wide)
