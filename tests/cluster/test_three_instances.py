"""Three ``backlogd serve`` processes on one PostgreSQL database, two of them killed with SIGKILL."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import pytest

from tests.cluster.rig import Cluster
from tests.reliability.checks import duplicate_plan_problems, nodes, tree_problems
from tests.reliability.test_soak import VISIONS
from tests.reliability.watchers import Activity, Watcher, sequence_problems

LIMITS = {
    "max_epics": 1,
    "max_features_per_epic": 2,
    "max_stories_per_feature": 2,
    "max_tasks_per_story": 1,
    "max_test_cases_per_story": 1,
}
JOBS = 9
SETTLED = frozenset({"completed", "completed_with_errors", "failed", "cancelled", "needs_credentials"})


@pytest.mark.slow
@pytest.mark.timeout(180)
async def test_nine_jobs_on_three_instances_survive_two_kills(tmp_path: Path, pg_url: str) -> None:
    """Nine jobs submitted round-robin to three instances, each followed over SSE on another instance;
    one instance is SIGKILLed mid-generation and another mid-upload: every job completes on the survivors,
    every work item is created exactly once in the emulator, every client sees every event once in order."""
    rig = Cluster(tmp_path, pg_url, LIMITS, count=3)
    figures: dict[str, object] = {}
    try:
        async with asyncio.timeout(150), aiohttp.ClientSession() as session:
            await rig.start_upstreams(llm_latency=0.15)
            await rig.start_instances()
            started = time.monotonic()
            jobs = [await rig.submit(session, i % 3, VISIONS[i % len(VISIONS)], LIMITS) for i in range(JOBS)]
            activity = Activity()
            watchers = [
                Watcher(job, f"job {i} on instance {(i + 1) % 3}", _at(rig, (i + 1) % 3), activity)
                for i, job in enumerate(jobs)
            ]
            following = [asyncio.create_task(w.follow(session)) for w in watchers]
            try:
                figures["kill_mid_job"] = await _kill_mid_generation(rig, watchers, 0)
                figures["kill_mid_upload"] = await _kill_mid_upload(rig, watchers, 1)
                statuses = await _wait_settled(rig, session, jobs)
                figures["all_settled_s"] = round(time.monotonic() - started, 2)
                await asyncio.wait_for(asyncio.gather(*following), timeout=30)
            finally:
                for task in following:
                    task.cancel()
                await asyncio.gather(*following, return_exceptions=True)
            backlogs = [await rig.get(session, f"/api/jobs/{j}/backlog", 2) for j in jobs]
            emulator = await rig.emulator_state(session)
    except BaseException:
        print(f"figures: {figures}\ninstance 2 log tail:\n{rig.logs(2)}")
        raise
    finally:
        await rig.close()
    figures["work_items"] = sum(1 for b in backlogs for _ in nodes(b))
    figures["events_seen"] = sum(len(w.seqs) for w in watchers)
    figures["sse_reconnects"] = sum(w.connects - 1 for w in watchers)
    print(f"three-instance figures: {figures}")
    assert statuses == {j: "completed" for j in jobs}
    assert tree_problems(backlogs, emulator) == []
    assert duplicate_plan_problems(backlogs, emulator) == []
    last = {b["job_id"]: b["last_seq"] for b in backlogs}
    assert [p for w in watchers for p in sequence_problems(w, last[w.job_id])] == []


def _at(rig: Cluster, n: int):  # type: ignore[no-untyped-def]
    return lambda: rig.url_for(n)


async def _kill_mid_generation(rig: Cluster, watchers: list[Watcher], n: int) -> dict[str, object]:
    """SIGKILL instance ``n`` once one of the jobs submitted to it has generated items, before its final."""
    mine = [w for i, w in enumerate(watchers) if i % 3 == n]
    async with asyncio.timeout(60):
        while not any(sum(t == "item" for t in w.types.values()) >= 2 and not w.finished for w in mine):  # noqa: ASYNC110 (polls the database or another process)
            await asyncio.sleep(0.005)
    await rig.kill(n)
    return {"instance": n, "its_jobs_finished": sum(w.finished for w in mine)}


async def _kill_mid_upload(rig: Cluster, watchers: list[Watcher], n: int) -> dict[str, object]:
    """SIGKILL instance ``n`` once one of the jobs submitted to it has uploaded items, before its final."""
    mine = [w for i, w in enumerate(watchers) if i % 3 == n]
    async with asyncio.timeout(60):
        while not any(sum(t == "upload" for t in w.types.values()) >= 3 and not w.finished for w in mine):  # noqa: ASYNC110 (polls the database or another process)
            await asyncio.sleep(0.005)
    await rig.kill(n)
    return {"instance": n, "its_jobs_finished": sum(w.finished for w in mine)}


async def _wait_settled(rig: Cluster, session: aiohttp.ClientSession, jobs: list[str]) -> dict[str, str]:
    while True:
        statuses = {j: (await rig.get(session, f"/api/jobs/{j}", 2))["status"] for j in jobs}
        if all(s in SETTLED for s in statuses.values()):
            return statuses
        await asyncio.sleep(0.1)
