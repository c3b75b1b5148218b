"""The relay's update path against the emulator: an uploaded item edited again is a PATCH of its work
item tested against the revision we wrote (rev + 1, never a second work item); a change of links or
other fields made in Azure DevOps meanwhile is retried at the current revision; a change of a field we
own ends the item in ``conflict`` with their version kept and nothing overwritten."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from outbox import edits, queue
from outbox.records import ItemRow, NewEvent
from tests.outbox.test_upload_support import (
    PAT,
    PROJECT,
    ServerFactory,
    UploadRig,
    basic_auth,
    stage,
    tree,
    upload_rig,
)

JOB = "job-upd"


def _no_events(rows: list[ItemRow]) -> list[NewEvent]:
    return []


async def _uploaded_story(rig: UploadRig) -> ItemRow:
    await stage(rig.store, JOB, tree(JOB, cases=0, qa=False))
    await rig.upload(JOB)
    rows = await rig.store.items(JOB)
    assert {r.state for r in rows} == {"uploaded"}
    return next(r for r in rows if r.kind == "story")


async def _edit_title(rig: UploadRig, row: ItemRow, title: str) -> None:
    await edits.edit(rig.store, JOB, row.id, title, {**row.body, "title": title}, _no_events)


async def _work_item(rig: UploadRig, ado_id: int) -> dict[str, Any]:
    state = await rig.state()
    return next(w for w in state["work_items"] if w["id"] == ado_id)


async def _patch_in_ado(rig: UploadRig, ado_id: int, ops: list[dict[str, Any]]) -> None:
    url = f"{rig.base}/backlogd/{PROJECT}/_apis/wit/workitems/{ado_id}?api-version=7.1"
    headers = {**basic_auth(PAT), "Content-Type": "application/json-patch+json"}
    async with rig.session.patch(url, json=ops, headers=headers) as resp:
        assert resp.status == 200, await resp.text()


async def test_an_edited_uploaded_item_updates_its_work_item(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """An edit of an uploaded story is one PATCH of the same work item: rev + 1, no new work item."""
    async with upload_rig(aiohttp_server, tmp_path) as rig:
        story = await _uploaded_story(rig)
        assert story.ado_id is not None and story.ado_rev is not None and story.written
        count = len((await rig.state())["work_items"])
        await _edit_title(rig, story, "A sharper story title")
        assert (await rig.store.items(JOB))[2].state in ("pending", "uploaded")
        await rig.upload(JOB)
        after = next(r for r in await rig.store.items(JOB) if r.id == story.id)
        work_item = await _work_item(rig, story.ado_id)
        assert after.state == "uploaded" and after.ado_id == story.ado_id
        assert work_item["title"] == "A sharper story title"
        assert work_item["rev"] == story.ado_rev + 1 == after.ado_rev
        assert len((await rig.state())["work_items"]) == count
        assert after.written is not None and after.written["System.Title"] == "A sharper story title"
        update = [e for e in rig.events if e.type == "upload" and e.payload.get("update")]
        assert [e.payload["rev"] for e in update] == [story.ado_rev + 1]


async def test_a_412_from_a_link_or_tag_change_is_retried_at_the_current_rev(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """Someone added a tag in Azure DevOps (rev moved, no owned field changed): our update still lands."""
    async with upload_rig(aiohttp_server, tmp_path) as rig:
        story = await _uploaded_story(rig)
        assert story.ado_id is not None and story.ado_rev is not None
        await _patch_in_ado(
            rig, story.ado_id, [{"op": "add", "path": "/fields/System.Tags", "value": "triaged"}]
        )
        await _edit_title(rig, story, "Edited after a tag")
        await rig.upload(JOB)
        after = next(r for r in await rig.store.items(JOB) if r.id == story.id)
        work_item = await _work_item(rig, story.ado_id)
        assert after.state == "uploaded", after.error
        assert work_item["title"] == "Edited after a tag" and "triaged" in work_item["tags"]
        assert work_item["rev"] == story.ado_rev + 2 == after.ado_rev


async def test_a_title_changed_in_ado_meanwhile_is_a_conflict_and_nothing_is_overwritten(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """Someone retitled the work item in Azure DevOps: our update stops in ``conflict`` with theirs kept."""
    async with upload_rig(aiohttp_server, tmp_path) as rig:
        story = await _uploaded_story(rig)
        assert story.ado_id is not None and story.ado_rev is not None
        ops = [{"op": "add", "path": "/fields/System.Title", "value": "Their title"}]
        await _patch_in_ado(rig, story.ado_id, ops)
        await _edit_title(rig, story, "Our title")
        await rig.upload(JOB)
        after = next(r for r in await rig.store.items(JOB) if r.id == story.id)
        work_item = await _work_item(rig, story.ado_id)
        assert after.state == "conflict"
        assert work_item["title"] == "Their title" and work_item["rev"] == story.ado_rev + 1
        assert after.conflict is not None
        assert after.conflict["theirs"]["title"] == "Their title"
        assert after.conflict["theirs"]["rev"] == story.ado_rev + 1
        assert after.title == "Our title"
        conflict = [e for e in rig.events if e.type == "upload" and e.payload["state"] == "conflict"]
        assert conflict and conflict[0].payload["theirs"]["title"] == "Their title"


async def test_an_edit_while_in_flight_is_sent_after_the_create(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """An edit committed while the item's create is in flight is not lost: the update follows."""
    async with upload_rig(aiohttp_server, tmp_path) as rig:
        await stage(rig.store, JOB, tree(JOB, cases=0, qa=False))
        epic = (await rig.store.items(JOB))[0]
        await rig.store.writer.execute(
            "UPDATE items SET state = 'in_flight', fence = fence + 1 WHERE id = ?", (epic.id,)
        )
        row = next(r for r in await rig.store.items(JOB) if r.id == epic.id)
        await _edit_title(rig, row, "Edited in flight")
        await queue.mark_uploaded(rig.store, row, 999, "u", 1, {}, {"System.Title": row.title})
        again = next(r for r in await rig.store.items(JOB) if r.id == epic.id)
        assert again.state == "pending" and again.ado_rev == 1 and not again.dirty
