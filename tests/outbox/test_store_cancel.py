"""A write cancelled at any point leaves the store usable: no transaction is left open."""

from __future__ import annotations

import asyncio
from pathlib import Path

from outbox.records import NewEvent
from outbox.store import Store
from tests.jobrows import OPTIONS, VISION


async def test_cancelling_a_write_at_any_await_never_leaves_a_transaction_open(tmp_path: Path) -> None:
    """Cancel an event append after 0, 1, 2… loop turns (landing on BEGIN, the inserts, COMMIT):
    the next write always succeeds, and the event log stays gapless (each append all or nothing)."""
    async with Store.open(tmp_path / "db.sqlite3") as store:
        await store.create_job("job", VISION, OPTIONS, {})
        for turns in range(40):
            task = asyncio.create_task(store.append_events("job", [NewEvent(type="progress", payload={})]))
            for _ in range(turns):
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            await store.append_events("job", [NewEvent(type="stage", payload={"turns": turns})])
        events = await store.events_after("job", 0)
        seqs = [e.seq for e in events]
        assert seqs == list(range(1, len(seqs) + 1))
        job = await store.get_job("job")
        assert job is not None and job.last_seq == seqs[-1]
        assert sum(e.type == "stage" and "turns" in e.payload for e in events) == 40
