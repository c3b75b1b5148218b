"""The emulator's journal: writes recorded, failed writes not, replayed with the same ids on restart."""

from __future__ import annotations

import base64
from pathlib import Path

import aiohttp

from emulator.config import EmulatorConfig
from emulator.server import serve

PAT = "journal-test-pat"
AUTH = {"Authorization": "Basic " + base64.b64encode(f":{PAT}".encode()).decode()}
PATCH = {"Content-Type": "application/json-patch+json", **AUTH}


async def create(session: aiohttp.ClientSession, org: str, kind: str, title: str) -> aiohttp.ClientResponse:
    body = [{"op": "add", "path": "/fields/System.Title", "value": title}]
    url = f"{org}/Backlogd/_apis/wit/workitems/${kind}?api-version=7.1"
    async with session.post(url, json=body, headers=PATCH) as resp:
        await resp.read()
        return resp


async def test_replay_restores_items_with_their_ids_and_skips_failed_and_cut_writes(tmp_path: Path) -> None:
    """Only successful writes are journaled; a line cut by a crash is ignored; replay gives each item
    the id it had, so the next create continues the same counter."""
    journal = tmp_path / "journal.jsonl"
    config = EmulatorConfig(pats=frozenset({PAT}))
    emulator = await serve(config, journal=journal)
    try:
        async with aiohttp.ClientSession() as session:
            assert (await create(session, emulator.url, "Epic", "First epic")).status == 200
            assert (await create(session, emulator.url, "Epic", "x" * 300)).status == 400  # title too long
            assert (await create(session, emulator.url, "Task", "A task")).status == 200
    finally:
        await emulator.close()
    lines = journal.read_text().splitlines()
    assert len(lines) == 2
    journal.write_text("\n".join(lines) + '\n{"method": "POST", "pa')  # a write cut mid-line
    again = await serve(config, journal=journal)
    try:
        titles = {i.id: i.fields["System.Title"] for i in again.state.items.values()}
        async with aiohttp.ClientSession() as session:
            assert (await create(session, again.url, "Epic", "After restart")).status == 200
    finally:
        await again.close()
    assert titles == {1: "First epic", 2: "A task"}
    assert max(i for i in again.state.items) == 3
    third = await serve(config, journal=journal)  # the write after the cut line survives too
    try:
        assert {i.id: i.fields["System.Title"] for i in third.state.items.values()}[3] == "After restart"
    finally:
        await third.close()
