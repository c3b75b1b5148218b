"""The product owner's loop in a real Chromium (Playwright), the relay uploading to the embedded
emulator: review then upload, an edit after upload as an update of the same work item, a change made
in Azure DevOps meanwhile shown as a conflict (nothing overwritten until the user chooses), and two
pages open at once both seeing an edit."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from tests.fakes.emulator_control import control_headers
from tests.web.test_browser import DONE, Site, _submit, browser, site  # noqa: F401 - fixtures

pytestmark = pytest.mark.browser
STATUS = "() => document.querySelector('#job-status').textContent === '{}'"


def _needs_edit_api(served: Site) -> None:
    """The one place these tests wait for the review/edit endpoints (built on another branch)."""
    paths = {r.canonical for r in served.app.router.resources()}
    if "/api/jobs/{id}/items/{item}" not in paths:
        pytest.skip("needs PATCH /api/jobs/{job}/items/{item} (wave3-review)")


async def _until(check: Callable[[], bool], limit: float = 10.0) -> None:
    """Wait (in short steps, bounded) until a condition on the emulator's state holds."""
    deadline = time.monotonic() + limit
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def _work_item(served: Site, ado_id: int) -> Any:
    assert served.services.emulator is not None
    return served.services.emulator.state.items[ado_id]


async def _open_first_story(page: Any) -> str:
    """Unfold the tree, open the first story in the pane; returns its item id."""
    await page.click("#expand-all")
    story = page.locator("#tree li[data-kind=story]").first
    await story.locator(".title").first.click()
    await page.locator("#pane").wait_for(state="visible")
    return str(await story.get_attribute("data-id"))


async def _edit_title(page: Any, title: str) -> None:
    await page.click("#pane [data-action=edit]")
    await page.fill("#edit-title", title)
    await page.click("#pane form button[type=submit]")


async def _ado_id(page: Any, item_id: str) -> int:
    link = page.locator(f"#item-{item_id} a.ado-link").first
    await link.wait_for(state="attached")
    return int((await link.text_content() or "#0").lstrip("#"))


async def test_review_edit_then_upload_puts_the_edited_title_in_azure_devops(
    browser: Any,  # noqa: F811
    site: Site,  # noqa: F811
) -> None:
    """A job started from the form in review mode waits with nothing uploaded; a title edited in the pane
    is saved (the tree shows it); Upload sends the backlog and the work item carries the edited title."""
    _needs_edit_api(site)
    page = await browser.new_page()
    await _submit(page, site.url, mode="review")
    await page.wait_for_function(STATUS.format("awaiting review"), timeout=15_000)
    assert site.services.emulator is not None and not site.services.emulator.state.items
    await page.locator("#review-box").wait_for(state="visible")
    assert await page.locator("#review-epics button[data-epic]").count() == 2
    item_id = await _open_first_story(page)
    await _edit_title(page, "Book a repair slot from the phone")
    title = f"() => document.querySelector('#item-{item_id} .title').textContent"
    await page.wait_for_function(f"{title} === 'Book a repair slot from the phone'")
    await page.click("#upload-all")
    await page.wait_for_function(STATUS.format("completed"), timeout=15_000)
    ado_id = await _ado_id(page, item_id)
    assert _work_item(site, ado_id).fields["System.Title"] == "Book a repair slot from the phone"
    assert await page.locator("#review-box").is_hidden()


async def test_an_edit_after_upload_updates_the_work_item_rev_plus_one(browser: Any, site: Site) -> None:  # noqa: F811
    """Editing an uploaded story's title updates its work item in the emulator (rev + 1, the same id,
    no new work item) and the pane shows the new revision."""
    _needs_edit_api(site)
    page = await browser.new_page()
    await _submit(page, site.url)
    await page.wait_for_function(STATUS.format("completed"), timeout=15_000)
    item_id = await _open_first_story(page)
    ado_id = await _ado_id(page, item_id)
    assert site.services.emulator is not None
    before_rev, before_count = _work_item(site, ado_id).rev, len(site.services.emulator.state.items)
    await _edit_title(page, "Edited after upload")
    await _until(lambda: _work_item(site, ado_id).fields["System.Title"] == "Edited after upload")
    assert _work_item(site, ado_id).rev == before_rev + 1
    assert len(site.services.emulator.state.items) == before_count
    await page.wait_for_function(
        f"() => document.querySelector('#pane').textContent.includes('rev {before_rev + 1}')", timeout=10_000
    )


async def test_a_change_in_azure_devops_meanwhile_shows_a_conflict(browser: Any, site: Site) -> None:  # noqa: F811
    """When the work item was changed in the emulator since our upload, saving an edit shows the
    conflict (mine and theirs side by side) and the emulator keeps their title; Keep mine then writes
    ours over it."""
    _needs_edit_api(site)
    page = await browser.new_page()
    await _submit(page, site.url)
    await page.wait_for_function(STATUS.format("completed"), timeout=15_000)
    item_id = await _open_first_story(page)
    ado_id = await _ado_id(page, item_id)
    emulator = site.services.emulator
    assert emulator is not None
    url = f"{emulator.url}/_apis/wit/workitems/{ado_id}?api-version=7.1"
    headers = {**control_headers(emulator.pat or ""), "Content-Type": "application/json-patch+json"}
    ops = [{"op": "add", "path": "/fields/System.Title", "value": "Their title"}]
    async with aiohttp.ClientSession() as session, session.patch(url, json=ops, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
    await _edit_title(page, "My title")
    conflict = page.locator("#pane section.conflict")
    await conflict.wait_for(timeout=10_000)
    text = await conflict.inner_text()
    assert "My title" in text and "Their title" in text
    assert _work_item(site, ado_id).fields["System.Title"] == "Their title"  # nothing overwritten
    await page.wait_for_function(f"() => document.querySelector('#item-{item_id} .badge.conflict') !== null")
    await page.check("#filter-conflicts")  # the conflicts-only filter finds it
    assert await page.inner_text("#search-count") == "1 match"
    await page.uncheck("#filter-conflicts")
    await page.click("#pane [data-keep=ours]")
    await _until(lambda: _work_item(site, ado_id).fields["System.Title"] == "My title")
    await page.wait_for_function(f"() => document.querySelector('#item-{item_id} .badge.uploaded') !== null")


async def test_two_pages_open_at_once_both_see_an_edit(browser: Any, site: Site) -> None:  # noqa: F811
    """With the same finished job open in two pages, a title edited in one appears in the other (the
    finished job's slow ETag poll replays the edit event through the stream)."""
    _needs_edit_api(site)
    first = await browser.new_page()
    await _submit(first, site.url)
    await first.wait_for_function(STATUS.format("completed"), timeout=15_000)
    second = await browser.new_page()
    await second.goto(first.url)
    await second.wait_for_function(STATUS.format("completed"), timeout=15_000)
    item_id = await _open_first_story(first)
    await _edit_title(first, "Seen by everyone")
    shown = f"() => document.querySelector('#item-{item_id} .title').textContent === 'Seen by everyone'"
    await first.wait_for_function(shown)
    await second.wait_for_function(shown, timeout=8_000)
    assert "Seen by everyone" in await second.inner_text("#feed")  # the edit event, not only a reload


async def test_add_a_child_and_delete_an_item_from_the_pane(browser: Any, site: Site) -> None:  # noqa: F811
    """In review, Add child puts a new task under a story (shown in the tree and the backlog); Delete
    with its confirmation removes an item from the tree and the backlog; field errors from a 400 show
    next to their field."""
    _needs_edit_api(site)
    page = await browser.new_page()
    await _submit(page, site.url, mode="review")
    await page.wait_for_function(STATUS.format("awaiting review"), timeout=15_000)
    story_id = await _open_first_story(page)
    await page.click("#pane [data-action=edit]")
    await page.fill("#edit-title", "")
    await page.click("#pane form button[type=submit]")
    error = page.locator("#edit-title-error")
    await error.wait_for(state="visible")
    assert await page.get_attribute("#edit-title", "aria-invalid") == "true"
    await page.click("#pane [data-action=add]")
    await page.fill("#add-title", "Write the offline mode notes")
    await page.fill("#add-description", "What the shop does when the network is down.")
    await page.fill("#add-estimate_hours", "3")
    await page.click("#pane form button[type=submit]")
    added = page.locator(
        f"#item-{story_id} li[data-kind=task] .title", has_text="Write the offline mode notes"
    )
    await added.wait_for()
    task_id = await page.locator(f"#item-{story_id} li[data-kind=task]").first.get_attribute("data-id")
    await page.locator(f"#item-{task_id} .title").click()
    await page.click("#pane [data-action=delete]")
    await page.click("#pane form.confirm button[type=submit]")
    await page.locator(f"#item-{task_id}").wait_for(state="detached")
    backlog = await (
        await page.request.get(f"{site.url}api/jobs/{page.url.rsplit('/', 1)[1]}/backlog")
    ).json()
    tasks = [
        t["title"] for e in backlog["epics"] for f in e["features"] for s in f["stories"] for t in s["tasks"]
    ]
    assert "Write the offline mode notes" in tasks and task_id not in str(backlog)


async def test_the_same_vision_again_offers_to_update_the_existing_backlog(browser: Any, site: Site) -> None:  # noqa: F811
    """Submitting a vision that already has a backlog shows the offer instead of a silent second copy;
    "Update the existing backlog" runs a re-run that creates no new work item and marks its items
    with their match."""
    from service.requests import JobRequest

    if "update_of" not in JobRequest.model_fields:
        pytest.skip("needs POST /api/jobs with update_of (wave3-rerun)")
    page = await browser.new_page()
    await _submit(page, site.url)
    await page.wait_for_function(STATUS.format("completed"), timeout=15_000)
    assert site.services.emulator is not None
    created = len(site.services.emulator.state.items)
    first_job = page.url
    await _submit_again(page, site.url)
    offer = page.locator("#rerun-offer")
    await offer.wait_for(state="visible")
    # no raw status code shown (as a word: the job ids it names are hex and may hold "409")
    assert re.search(r"\b409\b", await offer.inner_text()) is None
    await page.click("#rerun-update")
    await page.wait_for_url(lambda url: "#/jobs/" in url and url != first_job)
    await page.wait_for_function(STATUS.format("completed"), timeout=15_000)
    await page.locator("#tree .tag.match:not([hidden])").first.wait_for(state="attached")
    tags = await page.locator("#tree .tag.match").all_text_contents()
    assert tags and set(tags) <= {"unchanged", "updated", "new", "vanished"}
    assert len(site.services.emulator.state.items) == created  # nothing new to create


async def _submit_again(page: Any, url: str) -> None:
    """The form again, with the vision of the last job (no wait for a job page: a 409 keeps us here)."""
    from tests.web.test_browser import VISION

    await page.goto(url)
    await page.fill("#vision", VISION)
    await page.select_option("#upload-mode", "streaming")
    await page.uncheck("#include-qa")
    await page.click("#submit-job")


async def test_upload_one_epic_then_regenerate_a_story_s_children(browser: Any, site: Site) -> None:  # noqa: F811
    """In review, "Upload this epic" uploads that epic's subtree only (the other stays not uploaded);
    "Regenerate children…" with an instruction replaces a story's children in the tree."""
    _needs_edit_api(site)
    page = await browser.new_page()
    await _submit(page, site.url, mode="review")
    await page.wait_for_function(STATUS.format("awaiting review"), timeout=15_000)
    epics = page.locator("#tree > li[data-kind=epic]")
    first, second = await epics.nth(0).get_attribute("data-id"), await epics.nth(1).get_attribute("data-id")
    await page.click(f"#review-epics button[data-epic='{first}']")
    uploaded = f"() => document.querySelector('#item-{first} .badge').classList.contains('uploaded')"
    await page.wait_for_function(uploaded, timeout=15_000)
    assert await page.locator(f"#item-{second} .badge.uploaded").count() == 0
    await page.click("#expand-all")
    story = page.locator(f"#item-{second} li[data-kind=story]").first
    story_id = await story.get_attribute("data-id")
    before = await page.locator(f"#item-{story_id} li[data-kind=task]").evaluate_all(
        "ns => ns.map(n => n.id)"
    )
    await story.locator(".title").first.click()
    await page.click("#pane [data-action=regenerate]")
    await page.fill("#regen-instruction", "split into smaller tasks")
    await page.click("#pane form button[type=submit]")
    changed = f"""() => {{
      const ids = [...document.querySelectorAll('#item-{story_id} li[data-kind=task]')].map(n => n.id);
      return ids.length > 0 && !ids.includes({before[0]!r});
    }}"""
    await page.wait_for_function(changed, timeout=15_000)


async def test_deleting_an_uploaded_item_can_close_its_work_item(browser: Any, site: Site) -> None:  # noqa: F811
    """Deleting an uploaded task with "also close it in Azure DevOps" ticked removes it from the tree
    and closes its work item in the emulator (the default delete_action), without deleting it there."""
    _needs_edit_api(site)
    page = await browser.new_page()
    await _submit(page, site.url)
    await page.wait_for_function(STATUS.format("completed"), timeout=15_000)
    await page.click("#expand-all")
    task = page.locator("#tree li[data-kind=task]").first
    task_id = str(await task.get_attribute("data-id"))
    ado_id = await _ado_id(page, task_id)
    state = _work_item(site, ado_id).fields["System.State"]
    await task.locator(".title").click()
    await page.click("#pane [data-action=delete]")
    await page.check("#delete-in-ado")
    await page.click("#pane form.confirm button[type=submit]")
    await page.locator(f"#item-{task_id}").wait_for(state="detached")
    await _until(lambda: _work_item(site, ado_id).fields["System.State"] != state)
    assert ado_id in site.services.emulator.state.items  # type: ignore[union-attr]  # closed, not removed
