"""`$batch`: ordered per-item results with string bodies, temp ids within one batch, both atomicity modes."""

from __future__ import annotations

import json
from typing import Any

from tests.emulator.conftest import PATCH_JSON, Ado

BATCH = "/backlogd/_apis/wit/$batch?api-version=7.1"


def _create(temp: int, title: str, parent_temp: int | None = None, ctype: str = PATCH_JSON) -> dict[str, Any]:
    body: list[dict[str, Any]] = [
        {"op": "add", "path": "/id", "value": str(temp)},
        {"op": "add", "path": "/fields/System.Title", "value": title},
    ]
    if parent_temp is not None:
        url = f"https://dev.azure.com/backlogd/Backlogd/_apis/wit/workItems/{parent_temp}"
        body.append(
            {
                "op": "add",
                "path": "/relations/-",
                "value": {"rel": "System.LinkTypes.Hierarchy-Reverse", "url": url},
            }
        )
    return {
        "method": "PATCH",
        "uri": "/Backlogd/_apis/wit/workitems/$User%20Story?api-version=7.1",
        "headers": {"Content-Type": ctype},
        "body": body,
    }


async def test_batch_creates_in_order_with_temp_ids_and_string_bodies(emu: Ado) -> None:
    """Items come back in request order as `{code, headers, body}` with body a JSON string; -1 resolves."""
    reply = await emu.request("POST", BATCH, [_create(-1, "Parent"), _create(-2, "Child", parent_temp=-1)])
    assert reply.status == 200 and reply.json["count"] == 2
    first, second = reply.json["value"]
    assert first["code"] == 200 and isinstance(first["body"], str)
    parent, child = json.loads(first["body"]), json.loads(second["body"])
    assert child["fields"]["System.Parent"] == parent["id"]
    assert (await emu.state())["work_items"][0]["relations"][0]["target"] == child["id"]


async def test_temp_ids_do_not_cross_batches(emu: Ado) -> None:
    """A temp id from an earlier batch is unknown in the next one."""
    await emu.request("POST", BATCH, [_create(-1, "Parent")])
    reply = await emu.request("POST", BATCH, [_create(-2, "Child", parent_temp=-1)])
    assert reply.json["value"][0]["code"] == 400


async def test_independent_mode_saves_the_valid_items(emu: Ado) -> None:
    """By default a failing item does not stop the others."""
    bad = _create(-2, "x" * 300)
    reply = await emu.request("POST", BATCH, [_create(-1, "ok"), bad, _create(-3, "ok too")])
    assert [v["code"] for v in reply.json["value"]] == [200, 400, 200]
    assert len((await emu.state())["work_items"]) == 2


async def test_whole_bulk_fails_mode_rolls_back(emu: Ado) -> None:
    """In whole-bulk-fails mode the failing item is 400, the others 500 TF401321, and nothing is saved."""
    await emu.set_faults(batch_mode="whole-bulk-fails")
    reply = await emu.request("POST", BATCH, [_create(-1, "ok"), _create(-2, "x" * 300)])
    codes = [v["code"] for v in reply.json["value"]]
    assert codes == [500, 400] and "TF401321" in reply.json["value"][0]["body"]
    assert (await emu.state())["work_items"] == []
    assert (await emu.create("Task", {"System.Title": "after"})).json["id"] == 1


async def test_unsupported_inner_requests_and_consistency(emu: Ado) -> None:
    """Non-PATCH inner methods or extra query params are 404 per item; mixed bypassRules fails all (400)."""
    post = {**_create(-1, "a"), "method": "POST"}
    extra = {**_create(-2, "b"), "uri": "/Backlogd/_apis/wit/workitems/$Task?api-version=7.1&$expand=all"}
    reply = await emu.request("POST", BATCH, [post, extra])
    assert [v["code"] for v in reply.json["value"]] == [404, 404]
    mixed = {
        **_create(-3, "c"),
        "uri": "/Backlogd/_apis/wit/workitems/$Task?api-version=7.1&bypassRules=true",
    }
    reply = await emu.request("POST", BATCH, [_create(-4, "d"), mixed])
    assert [v["code"] for v in reply.json["value"]] == [400, 400]
    assert "consistent" in reply.json["value"][0]["body"]


async def test_duplicate_ids_and_missing_entries_knob(emu: Ado) -> None:
    """The same id twice is VS403357; the missing-entries knob drops trailing results (items still saved)."""
    reply = await emu.request("PATCH", BATCH, [_create(-1, "a"), _create(-1, "b")])
    assert all(v["code"] == 400 and "VS403357" in v["body"] for v in reply.json["value"])
    await emu.set_faults(batch_missing_entries=1)
    reply = await emu.request("POST", BATCH, [_create(-1, "a"), _create(-2, "b")])
    assert reply.json["count"] == 1
    assert len((await emu.state())["work_items"]) == 2


async def test_update_through_batch_and_outer_json_media_type(emu: Ado) -> None:
    """Updates use `/_apis/wit/workitems/{id}`; the outer body is plain application/json."""
    item = (await emu.create("Task", {"System.Title": "x"})).json["id"]
    update = {
        "method": "PATCH",
        "uri": f"/_apis/wit/workitems/{item}?api-version=7.1",
        "headers": {"Content-Type": PATCH_JSON},
        "body": [{"op": "add", "path": "/fields/System.Title", "value": "renamed"}],
    }
    reply = await emu.request("POST", BATCH, [update])
    assert reply.json["value"][0]["code"] == 200
    assert json.loads(reply.json["value"][0]["body"])["fields"]["System.Title"] == "renamed"
