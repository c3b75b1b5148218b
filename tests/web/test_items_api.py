"""Review mode and edits through the HTTP API, against the embedded emulator: nothing is uploaded
before the user says so, edits are validated, audited and published as ``edit`` events, an edit after
upload updates the same work item, a change made in Azure DevOps meanwhile is a 409 conflict that
overwrites nothing, and a deletion closes work items only when asked."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from outbox import edits
from outbox.store import Store
from service.composition import Services
from service.settings import Settings
from tests.fakes.emulator_control import control_headers, emulator_state
from tests.web.conftest import VISION, make_settings
from tests.web.sse_client import Seen, read_stream, until

Client = TestClient[Any, Any]


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path, emulator={"control": True})


async def _until(check: Callable[[], Awaitable[bool]], limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not await check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def _review_job(client: Client, services: Services, include_qa: bool = False) -> str:
    body = {"vision": VISION, "upload_mode": "review", "include_qa": include_qa}
    resp = await client.post("/api/jobs", json=body)
    assert resp.status == 202, await resp.text()
    job_id = str((await resp.json())["job_id"])
    await services.jobs.wait(job_id)
    return job_id


async def _backlog(client: Client, job_id: str) -> dict[str, Any]:
    resp = await client.get(f"/api/jobs/{job_id}/backlog")
    assert resp.status == 200
    body: dict[str, Any] = await resp.json()
    return body


async def _status(client: Client, job_id: str) -> str:
    return str((await (await client.get(f"/api/jobs/{job_id}")).json())["status"])


async def _uploaded_job(client: Client, services: Services) -> tuple[str, dict[str, Any]]:
    job_id = await _review_job(client, services)
    assert (await client.post(f"/api/jobs/{job_id}/upload", json={})).status == 202
    await services.jobs.wait(job_id)
    assert await _status(client, job_id) == "completed"
    story = (await _backlog(client, job_id))["epics"][0]["features"][0]["stories"][0]
    return job_id, story


async def _work_item(services: Services, ado_id: int) -> dict[str, Any]:
    assert services.emulator is not None
    state = await emulator_state(services.emulator)
    return next(w for w in state["work_items"] if w["id"] == ado_id)


async def _patch_in_ado(services: Services, ado_id: int, ops: list[dict[str, Any]]) -> None:
    emulator = services.emulator
    assert emulator is not None
    url = f"{emulator.url}/_apis/wit/workitems/{ado_id}?api-version=7.1"
    headers = {**control_headers(emulator.pat or ""), "Content-Type": "application/json-patch+json"}
    async with aiohttp.ClientSession() as session, session.patch(url, json=ops, headers=headers) as resp:
        assert resp.status == 200, await resp.text()


async def test_review_mode_uploads_nothing_until_asked_then_one_epic_then_the_rest(
    client: Client, services: Services
) -> None:
    """A review job stops in awaiting_review with every item held; uploading one epic sends only its
    subtree (QA included) and returns to awaiting_review; uploading the rest completes the job."""
    job_id = await _review_job(client, services, include_qa=True)
    assert await _status(client, job_id) == "awaiting_review"
    assert services.emulator is not None
    assert (await emulator_state(services.emulator))["work_items"] == []
    tree = await _backlog(client, job_id)
    first, second = tree["epics"][0], tree["epics"][1]
    story_ids = {s["id"] for f in first["features"] + second["features"] for s in f["stories"]}
    assert tree["sentences"] and {"id", "text", "covered_by"} <= set(tree["sentences"][0])
    assert any(set(s["covered_by"]) & story_ids for s in tree["sentences"])
    assert first["upload"]["state"] == "held" and first["upload"]["rev"] is None and first["conflict"] is None
    bad = await client.post(f"/api/jobs/{job_id}/upload", json={"epic_ids": [first["id"], "nope"]})
    assert bad.status == 400
    assert (await bad.json())["error"]["details"][0]["field"] == "epic_ids"
    resp = await client.post(f"/api/jobs/{job_id}/upload", json={"epic_ids": [first["id"]]})
    assert resp.status == 202
    await services.jobs.wait(job_id)
    assert await _status(client, job_id) == "awaiting_review"
    items = await services.store.items(job_id)
    under_first = {first["id"]}
    for row in items:  # parents come first: a row under the first epic follows its parent
        if row.parent_id in under_first:
            under_first.add(row.id)
    assert {r.state for r in items if r.id in under_first} == {"uploaded"}
    assert {r.kind for r in items if r.id in under_first} >= {"test_plan", "test_suite", "test_case"}
    assert {r.state for r in items if r.id not in under_first} == {"held"}
    assert (await _backlog(client, job_id))["epics"][1]["id"] == second["id"]
    assert (await client.post(f"/api/jobs/{job_id}/upload", json={})).status == 202
    await services.jobs.wait(job_id)
    assert await _status(client, job_id) == "completed"
    assert {r.state for r in await services.store.items(job_id)} == {"uploaded"}


async def test_edits_before_upload_are_validated_audited_and_published(
    client: Client, services: Services
) -> None:
    """PATCH changes a held item (200, the item as the backlog shows it, one audited edit event); a bad
    value, a sibling's title, an unknown or empty change is a 400 naming the field, changing nothing."""
    job_id = await _review_job(client, services)
    feature = (await _backlog(client, job_id))["epics"][0]["features"][0]
    story, other = feature["stories"][0], feature["stories"][1]
    url = f"/api/jobs/{job_id}/items/{story['id']}"
    resp = await client.patch(
        url,
        json={"title": "Book a repair slot online", "story_points": 5},
        headers={"X-Backlogd-Author": "Ann"},
    )
    assert resp.status == 200, await resp.text()
    item = await resp.json()
    assert item["title"] == "Book a repair slot online" and item["story_points"] == 5
    assert item["upload"]["state"] == "held" and item["id"] == story["id"]
    events = await services.store.events_after(job_id, 0)
    edit = [e for e in events if e.type == "edit"][-1].payload
    assert (
        edit["change"] == "edited" and edit["author"] == "Ann" and edit["fields"] == ["story_points", "title"]
    )
    assert edit["before"]["title"] == story["title"] and edit["after"]["story_points"] == 5
    assert edit["item"] == item
    for body, field in (
        ({"story_points": 4}, "story_points"),
        ({"title": other["title"]}, "title"),
        ({"estimate_hours": 3}, "estimate_hours"),
        ({"colour": "red"}, "colour"),
        ({}, "(body)"),
    ):
        bad = await client.patch(url, json=body)
        assert bad.status == 400, body
        assert field in [d["field"] for d in (await bad.json())["error"]["details"]], await bad.text()
    again = (await _backlog(client, job_id))["epics"][0]["features"][0]["stories"][0]
    assert again["title"] == "Book a repair slot online" and again["story_points"] == 5
    missing = await client.patch(f"/api/jobs/{job_id}/items/nope", json={"title": "x y z"})
    assert missing.status == 404


async def test_an_edit_after_upload_updates_the_same_work_item_within_two_seconds(
    client: Client, services: Services
) -> None:
    """An edit of an uploaded story on a completed job is on its work item at rev + 1 within 2 s, with
    no new work item; the backlog shows the new revision."""
    job_id, story = await _uploaded_job(client, services)
    ado_id, rev = story["upload"]["ado_id"], story["upload"]["rev"]
    assert services.emulator is not None
    count = len((await emulator_state(services.emulator))["work_items"])
    started = time.monotonic()
    resp = await client.patch(
        f"/api/jobs/{job_id}/items/{story['id']}", json={"title": "Edited after upload"}
    )
    assert resp.status == 200, await resp.text()

    async def landed() -> bool:
        return (await _work_item(services, ado_id))["title"] == "Edited after upload"

    await _until(landed, 2.0)
    assert time.monotonic() - started < 2.0
    assert (await _work_item(services, ado_id))["rev"] == rev + 1
    assert len((await emulator_state(services.emulator))["work_items"]) == count

    async def recorded() -> bool:
        now = (await _backlog(client, job_id))["epics"][0]["features"][0]["stories"][0]
        return bool(now["upload"]["state"] == "uploaded" and now["upload"]["rev"] == rev + 1)

    await _until(recorded)


async def test_a_change_in_ado_meanwhile_is_a_409_conflict_and_keep_theirs_adopts_it(
    client: Client, services: Services
) -> None:
    """Someone retitled the work item in Azure DevOps: PATCH answers 409 with ours and theirs, the item
    shows the conflict and ADO keeps their title; "theirs" adopts it, and a later edit lands at rev + 2."""
    job_id, story = await _uploaded_job(client, services)
    ado_id, rev = story["upload"]["ado_id"], story["upload"]["rev"]
    await _patch_in_ado(
        services, ado_id, [{"op": "add", "path": "/fields/System.Title", "value": "Their title"}]
    )
    url = f"/api/jobs/{job_id}/items/{story['id']}"
    resp = await client.patch(url, json={"title": "Our title"})
    assert resp.status == 409
    body = await resp.json()
    assert body["error"]["code"] == "conflict"
    assert body["ours"]["title"] == "Our title" and body["theirs"]["title"] == "Their title"
    assert body["theirs"]["rev"] == rev + 1
    shown = (await _backlog(client, job_id))["epics"][0]["features"][0]["stories"][0]
    assert shown["upload"]["state"] == "conflict" and shown["conflict"]["theirs"]["title"] == "Their title"
    assert shown["title"] == story["title"]  # our edit was not saved
    assert (await _work_item(services, ado_id))["title"] == "Their title"
    assert (await client.patch(url, json={"title": "Again"})).status == 409
    resolved = await client.post(f"{url}/resolve", json={"keep": "theirs"})
    assert resolved.status == 200, await resolved.text()
    item = await resolved.json()
    assert (
        item["title"] == "Their title" and item["upload"]["state"] == "uploaded" and item["conflict"] is None
    )
    assert (await client.post(f"{url}/resolve", json={"keep": "ours"})).status == 409  # no conflict now
    assert (await client.patch(url, json={"title": "Ours after all"})).status == 200

    async def landed() -> bool:
        return (await _work_item(services, ado_id))["title"] == "Ours after all"

    await _until(landed, 2.0)
    assert (await _work_item(services, ado_id))["rev"] == rev + 2


async def test_add_and_delete_items_with_and_without_azure_devops(client: Client, services: Services) -> None:
    """POST adds a valid child (201), refuses a wrong kind; DELETE drops the subtree from the backlog,
    and with in_ado=true also closes its uploaded work items (state Removed), nothing else."""
    job_id, story = await _uploaded_job(client, services)
    feature = (await _backlog(client, job_id))["epics"][0]["features"][0]
    wrong = await client.post(
        f"/api/jobs/{job_id}/items",
        json={"parent_id": feature["id"], "type": "task", "title": "Oil the chain"},
    )
    assert wrong.status == 400 and (await wrong.json())["error"]["details"][0]["field"] == "type"
    task = {
        "parent_id": story["id"],
        "type": "task",
        "title": "Oil the chain",
        "estimate_hours": 2,
        "activity": "Development",
    }
    added = await client.post(f"/api/jobs/{job_id}/items", json=task)
    assert added.status == 201, await added.text()
    new_id = (await added.json())["id"]
    assert (await added.json())["upload"]["state"] == "pending"

    async def uploaded() -> bool:
        rows = {r.id: r for r in await services.store.items(job_id)}
        return rows[new_id].state == "uploaded"

    await _until(uploaded)
    tasks = [t["upload"]["ado_id"] for t in story["tasks"]]
    resp = await client.delete(f"/api/jobs/{job_id}/items/{story['id']}?in_ado=true")
    assert resp.status == 200, await resp.text()
    done = await resp.json()
    assert story["id"] in done["removed"] and new_id in done["removed"]
    assert {d["ado_id"] for d in done["azure_devops"]} >= {story["upload"]["ado_id"], *tasks}
    assert all(d["done"] == "state Removed" for d in done["azure_devops"])
    assert (await _work_item(services, story["upload"]["ado_id"]))["fields"]["System.State"] == "Removed"
    left = await services.store.items(job_id)
    assert all(r.id not in done["removed"] for r in left)
    other = (await _backlog(client, job_id))["epics"][0]["features"][0]["stories"][0]
    resp = await client.delete(f"/api/jobs/{job_id}/items/{other['id']}")
    assert resp.status == 200 and (await resp.json())["azure_devops"] == []
    assert (await _work_item(services, other["upload"]["ado_id"]))["fields"]["System.State"] != "Removed"


async def test_two_open_pages_both_see_an_edit(client: Client, services: Services) -> None:
    """Two streams open on a job in review both receive the one edit event, with the edited item."""
    job_id = await _review_job(client, services)
    story = (await _backlog(client, job_id))["epics"][0]["features"][0]["stories"][0]
    seen = [Seen(), Seen()]
    streams = [await client.get(f"/api/progress/stream/{job_id}") for _ in seen]
    readers = [asyncio.create_task(read_stream(s, v)) for s, v in zip(streams, seen, strict=True)]
    try:
        resp = await client.patch(f"/api/jobs/{job_id}/items/{story['id']}", json={"priority": 1})
        assert resp.status == 200, await resp.text()
        for view in seen:
            await until(lambda v=view: any(f.event == "edit" for f in v.frames), 5)  # type: ignore[misc]
            edits = [f.data for f in view.frames if f.event == "edit"]
            assert len(edits) == 1 and edits[0]["item"]["priority"] == 1 and edits[0]["author"] == "local"
    finally:
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        for s in streams:
            s.close()


async def test_a_conflict_the_uploader_finds_is_published_as_an_edit(
    client: Client, services: Services
) -> None:
    """An update already queued when someone changes the work item in Azure DevOps stops in conflict, and
    every page hears it as a ``conflict`` edit by azure-devops carrying both versions."""
    job_id, story = await _uploaded_job(client, services)
    ado_id = story["upload"]["ado_id"]
    await _patch_in_ado(services, ado_id, [{"op": "add", "path": "/fields/System.Title", "value": "Theirs"}])
    row = next(r for r in await services.store.items(job_id) if r.id == story["id"])
    await edits.edit(services.store, job_id, row.id, "Ours", {**row.body, "title": "Ours"}, lambda _: [])
    assert services.uploads is not None
    services.uploads.follow(job_id)

    async def heard() -> bool:
        events = await services.store.events_after(job_id, 0)
        return any(e.type == "edit" and e.payload["change"] == "conflict" for e in events)

    await _until(heard, 5.0)
    edit = [e for e in await services.store.events_after(job_id, 0) if e.type == "edit"][-1].payload
    assert edit["author"] == "azure-devops" and edit["item"]["upload"]["state"] == "conflict"
    assert edit["item"]["conflict"]["ours"]["title"] == "Ours"
    assert edit["item"]["conflict"]["theirs"]["title"] == "Theirs"
    assert (await _work_item(services, ado_id))["title"] == "Theirs"


async def test_deleting_an_item_in_flight_is_a_409_and_a_bad_author_a_400(
    client: Client, services: Services
) -> None:
    """A subtree with an item being uploaded is not deleted (its work item would be orphaned); an
    author header over 80 characters is refused naming the header; neither changes anything."""
    job_id = await _review_job(client, services)
    story = (await _backlog(client, job_id))["epics"][0]["features"][0]["stories"][0]
    task = story["tasks"][0]
    store = services.store
    assert isinstance(store, Store)
    await store.writer.execute("UPDATE items SET state = 'in_flight' WHERE id = ?", (task["id"],))
    resp = await client.delete(f"/api/jobs/{job_id}/items/{story['id']}")
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "upload_in_flight"
    resp = await client.patch(
        f"/api/jobs/{job_id}/items/{story['id']}",
        json={"priority": 1},
        headers={"X-Backlogd-Author": "x" * 81},
    )
    assert resp.status == 400 and (await resp.json())["error"]["details"][0]["field"] == "X-Backlogd-Author"
    rows = {r.id: r for r in await store.items(job_id)}
    assert story["id"] in rows and rows[story["id"]].body.get("priority") == story.get("priority")


async def test_keep_ours_writes_our_version_over_theirs(client: Client, services: Services) -> None:
    """After a 409, resolving with "ours" writes our fields over theirs, tested against their revision:
    the work item carries our title at their rev + 1 and the item is uploaded again."""
    job_id, story = await _uploaded_job(client, services)
    ado_id, rev = story["upload"]["ado_id"], story["upload"]["rev"]
    await _patch_in_ado(
        services, ado_id, [{"op": "add", "path": "/fields/System.Title", "value": "Their title"}]
    )
    url = f"/api/jobs/{job_id}/items/{story['id']}"
    assert (await client.patch(url, json={"priority": 1})).status == 409
    resolved = await client.post(f"{url}/resolve", json={"keep": "ours"})
    assert resolved.status == 200, await resolved.text()
    assert (await resolved.json())["upload"]["state"] == "pending"

    async def landed() -> bool:
        return (await _work_item(services, ado_id))["title"] == story["title"]

    await _until(landed, 2.0)
    assert (await _work_item(services, ado_id))["rev"] == rev + 2
    resolved_events = [e.payload for e in await services.store.events_after(job_id, 0) if e.type == "edit"]
    assert [e["change"] for e in resolved_events][-2:] == ["conflict", "resolved"]
