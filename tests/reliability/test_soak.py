"""The soak: service, ADO emulator and fake LLM as separate processes under a fault storm, with the
service killed (SIGKILL) and restarted at seeded random points while SSE clients follow every job.

Reduced in ``make test``; full size with ``--soak`` or ``BACKLOGD_SOAK=1`` (``make soak``).
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.reliability.checks import duplicate_plan_problems, nodes, tree_problems
from tests.reliability.rig import SETTLED, Rig, Storm
from tests.reliability.watchers import Activity, Watcher, sequence_problems

VISIONS = (
    "A clinic scheduling service. Patients book, move and cancel appointments online. Doctors publish "
    "their weekly availability. Reception staff see the day's queue at a glance. Reminders go out by SMS "
    "a day before each visit. No-shows are tracked so that repeat offenders must prepay.",
    "A community library app. Members search the catalogue and reserve books. Librarians record loans "
    "and returns with a barcode scanner. Overdue loans trigger e-mail reminders. Members rate books and "
    "see recommendations from readers with similar taste.",
    "A warehouse picking assistant. Pickers receive optimised routes on a handheld device. Supervisors "
    "watch throughput per zone in real time. Stock counts update as items are scanned. Damaged goods "
    "are photographed and reported to the supplier automatically.",
)


@dataclass(frozen=True)
class Size:
    jobs: int
    kills: int
    watchers_per_job: int
    limits: dict[str, int]
    events_between_kills: tuple[int, int]  # events seen by all watchers together, drawn per kill
    budget_seconds: float
    seed: int = 20240917
    storm: Storm = field(default_factory=Storm)


REDUCED = Size(
    jobs=3,
    kills=3,
    watchers_per_job=2,
    limits={
        "max_epics": 2,
        "max_features_per_epic": 2,
        "max_stories_per_feature": 2,
        "max_tasks_per_story": 2,
        "max_test_cases_per_story": 2,
    },
    events_between_kills=(60, 160),
    budget_seconds=60,
)
FULL = Size(
    jobs=3,
    kills=5,
    watchers_per_job=3,
    limits={
        "max_epics": 3,
        "max_features_per_epic": 3,
        "max_stories_per_feature": 3,
        "max_tasks_per_story": 3,
        "max_test_cases_per_story": 2,
    },
    events_between_kills=(300, 900),
    budget_seconds=420,
)


@dataclass
class Run:
    """What happened during one soak, for the assertions and the failure message."""

    jobs: list[str] = field(default_factory=list)
    watchers: list[Watcher] = field(default_factory=list)
    kills: list[float] = field(default_factory=list)  # seconds since the first submit
    integrity_after_kill: list[str] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)
    details: dict[str, dict[str, Any]] = field(default_factory=dict)  # the last GET /api/jobs/{id}

    def summary(self) -> str:
        lines = [f"kills at {self.kills} s, integrity after each: {self.integrity_after_kill}"]
        for job, d in self.details.items():
            lines.append(f"job {job}: {d['status']} last_seq {d['last_seq']} items {d['items']}")
        for w in self.watchers:
            lines.append(
                f"{w.name}: {len(w.seqs)} events, last {w.last}, {w.connects} connects, done {w.finished}"
            )
        return "\n".join(lines)


@pytest.mark.slow
@pytest.mark.timeout(900)
async def test_soak_loses_nothing_duplicates_nothing_and_every_client_sees_every_event(
    tmp_path: Path, soak: bool
) -> None:
    """Three jobs under a 429/5xx/reset/lost-response storm, with the service SIGKILLed and restarted at
    random points, all complete with exactly one work item per generated item under the right parent, no
    request before a Retry-After deadline, every SSE event seen once and in order, and a sound database."""
    size = FULL if soak else REDUCED
    rig = Rig(tmp_path, size.storm, size.limits)
    run = Run()
    try:
        async with asyncio.timeout(size.budget_seconds), aiohttp.ClientSession() as session:
            await rig.start_upstreams()
            await rig.set_faults(session)
            await rig.start_service()
            await _soak(rig, session, size, run)
            backlogs = [await rig.get(session, f"/api/jobs/{j}/backlog") for j in run.jobs]
            emulator = await rig.emulator_state(session)
            service_exit = await rig.stop_service()
            llm_stats = await rig.stop_llm()
    except BaseException:
        print(f"soak run:\n{run.summary()}\nservice log tail:\n{rig.service_logs()}")
        raise
    finally:
        await rig.close()
    _assert_outcome(rig, size, run, backlogs, emulator, llm_stats, service_exit)


async def _soak(rig: Rig, session: aiohttp.ClientSession, size: Size, run: Run) -> None:
    rng = random.Random(size.seed)
    activity = Activity()
    run.jobs = [await rig.submit(session, VISIONS[i % len(VISIONS)], size.limits) for i in range(size.jobs)]
    started = time.monotonic()
    run.watchers = [
        Watcher(job, f"client {n} of job {job[:8]}", lambda: rig.service_url, activity)
        for job in run.jobs
        for n in range(size.watchers_per_job)
    ]
    following = [asyncio.create_task(w.follow(session)) for w in run.watchers]
    try:
        for _ in range(size.kills):
            target = activity.events + rng.randint(*size.events_between_kills)
            if not await activity.wait_for(target, within=30) or all(w.finished for w in run.watchers):
                break  # every job already finished: no point left to kill at
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            await rig.kill_service()
            run.kills.append(round(time.monotonic() - started, 2))
            run.integrity_after_kill.append(rig.integrity())
            await asyncio.sleep(rng.uniform(0.0, 0.3))
            await rig.start_service()
        await _wait_finished(rig, session, run)
        await asyncio.wait_for(asyncio.gather(*following), timeout=30)
    finally:
        for task in following:
            task.cancel()
        await asyncio.gather(*following, return_exceptions=True)


async def _wait_finished(rig: Rig, session: aiohttp.ClientSession, run: Run) -> None:
    while True:
        for job in run.jobs:
            run.details[job] = await rig.get(session, f"/api/jobs/{job}")
            run.statuses[job] = run.details[job]["status"]
        if all(s in SETTLED for s in run.statuses.values()):
            return
        await asyncio.sleep(0.1)


def _assert_outcome(
    rig: Rig,
    size: Size,
    run: Run,
    backlogs: list[dict[str, Any]],
    emulator: dict[str, Any],
    llm_stats: dict[str, Any],
    service_exit: int | None,
) -> None:
    assert len(run.kills) == size.kills, f"only {len(run.kills)} kills happened before the jobs finished"
    unfinished = {
        j: (d["status"], d["error"], d["metadata"].get("failed_calls"), d["items"])
        for j, d in run.details.items()
        if d["status"] != "completed"
    }
    assert unfinished == {}
    generated = sum(1 for b in backlogs for _ in nodes(b))
    expected_per_job = _work_items_per_job(size.limits)
    assert generated == size.jobs * expected_per_job, "limits are exact, so every job has the same size"
    assert tree_problems(backlogs, emulator) == []
    assert duplicate_plan_problems(backlogs, emulator) == []
    assert emulator["early_requests"] == 0, "a request reached the emulator before its Retry-After"
    assert llm_stats["early_requests"] == 0, f"LLM requests before their Retry-After: {llm_stats['early']}"
    injected = emulator["faults_injected"]
    assert injected.get("throttle", 0) > 0 and injected.get("lose_response", 0) > 0
    assert llm_stats["retry_deadlines"] > 0, "the LLM storm sent no 429 at all"
    last = {b["job_id"]: b["last_seq"] for b in backlogs}
    problems = [p for w in run.watchers for p in sequence_problems(w, last[w.job_id])]
    assert problems == []
    assert all(w.connects > 1 for w in run.watchers), "every client reconnected at least once"
    assert run.integrity_after_kill == ["ok"] * len(run.kills)
    assert service_exit == 0, "SIGTERM ends the service cleanly"
    assert rig.integrity() == "ok"


def _work_items_per_job(limits: dict[str, int]) -> int:
    epics = limits["max_epics"]
    features = epics * limits["max_features_per_epic"]
    stories = features * limits["max_stories_per_feature"]
    per_story = limits["max_tasks_per_story"] + limits["max_test_cases_per_story"]
    return epics + features + stories + stories * per_story
