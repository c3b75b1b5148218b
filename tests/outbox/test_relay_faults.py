"""The relay with the real ADO client against the emulator under injected faults: exactly once, in order."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from emulator.config import FaultConfig
from hardware.aimd import AdaptiveLimiter
from tests.outbox.test_upload_support import (
    ServerFactory,
    check_exactly_once,
    emulator_config,
    stage,
    tree,
    upload_rig,
)

JOB = "job-storm"
STORM = FaultConfig(
    throttle=0.10,
    error_503=0.05,
    reset=0.03,
    lose_response=0.05,
    retry_after_seconds=0.06,
    seed=7,
    # Arrivals within 30 ms of a 429 may have been on their way before the client could see it (client and
    # emulator share one event loop on a shared, loaded machine); a client ignoring the pause is caught in
    # the other 30 ms.
    early_grace_seconds=0.03,
    routes=frozenset({"create"}),
)


@pytest.mark.parametrize("routes", [("create",), ("create", "testplan")])
async def test_fault_storm_uploads_every_item_exactly_once_under_its_parent(
    aiohttp_server: ServerFactory, tmp_path: Path, routes: tuple[str, ...]
) -> None:
    """With 10% 429s, 5% 503s, 3% resets and 5% lost responses every item lands once, under its parent."""
    items = tree(JOB, 2, 3, 3, 2, 2)  # 2 + 6 + 6 plans + 18 stories + 18 suites + 36 tasks + 36 cases
    gate = AdaptiveLimiter(8, name="ado-storm")
    async with upload_rig(
        aiohttp_server,
        tmp_path,
        emulator_config(STORM.model_copy(update={"routes": frozenset(routes)})),
        gate=gate,
        max_attempts=50,
    ) as rig:
        await stage(rig.store, JOB, items)
        await rig.upload(JOB)
        emu = await rig.state()
        rows = await rig.store.items(JOB)
    check_exactly_once(rows, emu)
    injected = emu["faults_injected"]
    assert injected["throttle"] >= 5 and injected["lose_response"] >= 3 and injected["reset"] >= 1
    assert injected["error_503"] >= 2
    assert emu["early_requests"] == 0
    assert gate.throttles >= injected["throttle"]
    assert {e.payload["state"] for e in rig.events if e.type == "upload"} >= {"uploaded", "retry_wait"}


async def test_one_retry_after_pauses_every_concurrent_upload_of_the_identity(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """A single 429 with Retry-After stops every task of the identity until the deadline, not just its own."""
    pause = 0.2
    faults = FaultConfig(
        every_nth={"throttle": 4}, limit=1, retry_after_seconds=pause, early_grace_seconds=0.02
    )
    gate = AdaptiveLimiter(8, name="ado-pause")
    async with upload_rig(aiohttp_server, tmp_path, emulator_config(faults), gate=gate) as rig:
        await stage(rig.store, JOB, tree(JOB, 24, 0))  # 24 independent epics, 8 uploading at a time
        started = time.monotonic()
        await rig.upload(JOB)
        elapsed = time.monotonic() - started
        emu = await rig.state()
        rows = await rig.store.items(JOB)
    assert emu["faults_injected"] == {"throttle": 1}
    assert emu["early_requests"] == 0  # no task of the identity sent anything before the deadline
    assert elapsed >= pause
    assert gate.throttles == 1
    check_exactly_once(rows, emu)
