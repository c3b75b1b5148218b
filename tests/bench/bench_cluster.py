"""Benchmark: several instances on one PostgreSQL database.

- ``cluster_outbox_claim_ack``: outbox items per second through claim → ``mark_uploaded`` (the relay's
  two transactions per item) on PostgreSQL ÷ the same on SQLite, 2,000 items, 8 workers each claiming 8
  at a time and acknowledging one by one, as the relay does at concurrency 8 (target ≥ 0.5).
- ``cluster_ten_jobs_three_instances``: wall time of ten concurrent jobs submitted round-robin to three
  ``backlogd serve`` processes ÷ the same ten jobs on one process, both on PostgreSQL, the fake LLM at
  200 ms per call, the same per-instance limits, streaming uploads to the emulator (target ≤ 0.5). Each
  run starts with one warm-up job per instance (not timed), so no process pool is still starting.
- ``cluster_instance_memory``: the resident memory of the single instance (with its pool workers)
  while it runs those ten jobs, the peak of samples every 50 ms (report).

Run: ``.venv/bin/python -m tests.bench cluster``.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import psutil

from outbox import queue
from outbox.backend import StoreBackend, open_store
from outbox.records import NewItem
from tests.cluster.rig import Cluster
from tests.jobrows import OPTIONS, VISION
from tests.pgdb import fresh_database
from tests.reliability.test_soak import VISIONS

ITEMS = 2_000
WORKERS = 8
LIMITS = {
    "max_epics": 1,
    "max_features_per_epic": 2,
    "max_stories_per_feature": 2,
    "max_tasks_per_story": 1,
    "max_test_cases_per_story": 1,
}
JOBS = 10


def _flat(job: str) -> list[NewItem]:
    return [
        NewItem(id=f"{job}-{n}", parent_id=None, kind="epic", level=0, position=n, title=f"E{n}",
                body={"description": "x" * 200}, state="pending")
        for n in range(ITEMS)
    ]  # fmt: skip


async def _claim_ack(store: StoreBackend) -> float:
    """Seconds to move every item through claim and ack with ``WORKERS`` concurrent workers."""
    await store.create_job("bench", VISION, OPTIONS, {})
    await store.stage_items("bench", "staged", _flat("bench"))
    started = time.perf_counter()

    async def worker(n: int) -> None:
        while rows := await queue.claim(store, ["bench"], f"w{n}", store.now(), 60.0, WORKERS):
            for row in rows:
                await queue.mark_uploaded(store, row, 1, "u", 1, {})

    await asyncio.gather(*(worker(n) for n in range(WORKERS)))
    elapsed = time.perf_counter() - started
    assert await queue.open_count(store, "bench") == 0
    return elapsed


async def _outbox_row() -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        lite_times, pg_times = [], []
        for n in range(3):
            async with open_store(None, f"{tmp}/o{n}.sqlite3") as lite:
                lite_times.append(await _claim_ack(lite))
            async with fresh_database() as url, open_store(url, "") as pg:
                pg_times.append(await _claim_ack(pg))
    lite_rate, pg_rate = ITEMS / min(lite_times), ITEMS / min(pg_times)
    ratio = pg_rate / lite_rate
    return {
        "name": "cluster_outbox_claim_ack",
        "value": round(pg_rate),
        "bound": round(lite_rate),
        "ratio": round(ratio, 3),
        "unit": f"items/s claim→ack on PostgreSQL, {WORKERS} workers (ratio: ÷ the same on SQLite)",
        "target": "≥ 0.5",
        "ok": ratio >= 0.5,
    }


async def _ten_jobs(count: int, folder: Path) -> tuple[float, int]:
    """Wall seconds for ten jobs on ``count`` instances, and the peak RSS (bytes) of instance 0."""
    await asyncio.to_thread(folder.mkdir)
    async with fresh_database() as url:
        rig = Cluster(folder, url, LIMITS, count=count)
        try:
            await rig.start_upstreams(llm_latency=0.2)
            await rig.start_instances()
            async with aiohttp.ClientSession() as session:
                # Warm up: one job per instance first, so every process pool has started its workers.
                warm = [await rig.submit(session, n, VISIONS[0], LIMITS) for n in range(count)]
                await _run_jobs(rig, session, warm)
                started = time.monotonic()
                jobs = [
                    await rig.submit(session, i % count, VISIONS[i % len(VISIONS)], LIMITS)
                    for i in range(JOBS)
                ]
                peak = await _run_jobs(rig, session, jobs)
                wall = time.monotonic() - started
        finally:
            await rig.close()
    return wall, peak


async def _run_jobs(rig: Cluster, session: aiohttp.ClientSession, jobs: list[str]) -> int:
    """Wait until every job completed; returns the peak RSS of instance 0 (with its workers) meanwhile."""
    peak = 0
    proc = psutil.Process(rig.pid(0))
    while True:
        peak = max(peak, _rss(proc))
        statuses = [(await rig.get(session, f"/api/jobs/{j}"))["status"] for j in jobs]
        if all(s in ("completed", "completed_with_errors", "failed") for s in statuses):
            assert statuses == ["completed"] * len(jobs), statuses
            return peak
        await asyncio.sleep(0.05)


def _rss(proc: psutil.Process) -> int:
    try:
        return int(proc.memory_info().rss + sum(c.memory_info().rss for c in proc.children(recursive=True)))
    except psutil.Error:
        return 0


async def run() -> list[dict[str, Any]]:
    rows = [await _outbox_row()]
    with tempfile.TemporaryDirectory() as tmp:
        one, memory = await _ten_jobs(1, Path(tmp) / "one")
        three, _ = await _ten_jobs(3, Path(tmp) / "three")
    ratio = three / one
    rows.append(
        {
            "name": "cluster_ten_jobs_three_instances",
            "value": round(three, 2),
            "bound": round(one, 2),
            "ratio": round(ratio, 3),
            "unit": f"s for {JOBS} jobs on 3 instances, LLM fake 200 ms, streaming uploads"
            " (ratio: ÷ the same jobs on one instance)",
            "target": "≤ 0.5",
            "ok": ratio <= 0.5,
        }
    )
    rows.append(
        {
            "name": "cluster_instance_memory",
            "value": round(memory / 2**20, 1),
            "bound": "",
            "ratio": "",
            "unit": f"MiB peak RSS of one instance and its pool workers running {JOBS} jobs",
            "target": "report only",
            "ok": True,
        }
    )
    return rows


if __name__ == "__main__":
    for row in asyncio.run(run()):
        print(json.dumps(row, ensure_ascii=False))
