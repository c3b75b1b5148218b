"""The emulator's journal: writes recorded, failed writes not, replayed with the same ids on restart;
written on its own thread, so the event loop never waits for the disk."""

from __future__ import annotations

import asyncio
import base64
import gc
from pathlib import Path

import aiohttp

from emulator.config import EmulatorConfig
from emulator.journal import Journal
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


async def _max_lag(stop: asyncio.Event, interval: float = 0.001) -> tuple[float, int]:
    """Tick every ``interval`` until ``stop``; return the longest a tick came late, and how many ran."""
    loop = asyncio.get_running_loop()
    worst, ticks = 0.0, 0
    while not stop.is_set():
        due = loop.time() + interval
        await asyncio.sleep(interval)
        worst, ticks = max(worst, loop.time() - due), ticks + 1
    return worst, ticks


async def test_journaling_many_writes_leaves_the_loop_responsive_and_loses_nothing(tmp_path: Path) -> None:
    """Thousands of journal writes (megabytes in all, a hundred at a time like concurrent requests) go
    out on the writer thread: a task ticking every millisecond keeps ticking and is never late by more
    than 50 ms, and every line is in the file, in order, after close and after reopening it."""
    path = tmp_path / "journal.jsonl"
    journal = await Journal.open(path)
    await journal.append({"n": -1})  # the file and the writer thread are warm
    body, count, wave = "x" * 2048, 3000, 100
    gc.freeze()  # a full collection of the test session's heap would stall the loop: not the journal's
    try:
        stop = asyncio.Event()
        ticker = asyncio.create_task(_max_lag(stop))
        await asyncio.sleep(0.01)  # the ticker is running
        for first in range(0, count, wave):
            await asyncio.gather(
                *(journal.append({"n": n, "body": body}) for n in range(first, first + wave))
            )
        # more writes still queued at close: aclose writes them before the thread stops
        pending = [asyncio.ensure_future(journal.append({"n": count + n, "body": body})) for n in range(50)]
        await asyncio.sleep(0)
        await journal.aclose()
        await asyncio.gather(*pending)
        stop.set()
        worst, ticks = await ticker
    finally:
        gc.unfreeze()
    assert ticks > 10 and worst < 0.05, (worst, ticks)
    again = await Journal.open(path)
    try:
        assert [e["n"] for e in await again.entries()] == list(range(-1, count + 50))
    finally:
        await again.aclose()
