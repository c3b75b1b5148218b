"""kill -9 of the uploading ``backlogd`` process, three times at random points, then resume: exactly once.

The emulator runs as its own process (``backlogd emulator``) so it survives the kills and keeps what was
created; ``backlogd run``/``resume`` upload to it as a real organization (``target: ado``).
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path

import yaml

from outbox.store import Store
from tests.e2e.helpers import (
    EmulatorProcess,
    backlogd_command,
    child_env,
    emulator_process,
    finish,
    kill9,
    read_line_with,
    reap,
    spawn,
)
from tests.outbox.test_upload_support import check_exactly_once

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "clinic-scheduling.yaml"
LIMITS = {
    "max_epics": 2,
    "max_features_per_epic": 2,
    "max_stories_per_feature": 3,
    "max_tasks_per_story": 3,
    "max_test_cases_per_story": 2,
}
LATENCY = 0.03  # per emulator request: leaves time to kill mid-upload


def write_settings(tmp_path: Path, org_url: str = "") -> Path:
    path = tmp_path / "settings.yaml"
    settings = {
        "database": {"path": str(tmp_path / "backlogd.sqlite3")},
        "logging": {"level": "warning"},
        "emulator": {"control": True},  # the test reads the emulator's state and sets its faults
        "workflow": {"limits": LIMITS, "parallel_processing": {"max_workers": 1}},
        "azure_devops": {
            "target": "ado",
            "organization_url": org_url,
            "project": "Backlogd",
            "pat_env": "AZURE_DEVOPS_PAT",
            "max_concurrency": 2,
            "lease_seconds": 1.0,  # a dead owner's leases come back quickly
            "upload_mode": "streaming",
        },
    }
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


async def kill_when_created(emu: EmulatorProcess, proc_args: list[str], tmp_path: Path, at_least: int) -> str:
    """Start ``backlogd proc_args``, SIGKILL it once ``at_least`` work items exist; returns the job id."""
    env = child_env({"AZURE_DEVOPS_PAT": "e2e-pat"})
    proc = await spawn(backlogd_command(*proc_args), env, tmp_path)
    try:
        job_id = await read_line_with(proc, "job:")
        async with asyncio.timeout(20):
            while len((await emu.state())["work_items"]) < at_least:
                assert proc.returncode is None, "backlogd finished before it could be killed"
                await asyncio.sleep(0.005)
        kill9(proc)
        assert await proc.wait() != 0
    finally:
        await reap(proc)
    return job_id


async def test_three_kill9s_then_resume_upload_every_item_exactly_once(tmp_path: Path) -> None:
    """Killing the uploader three times mid-upload and resuming leaves exactly one work item per item."""
    rng = random.Random(20261128)
    async with emulator_process(write_settings(tmp_path), tmp_path) as emu:
        config = write_settings(tmp_path, emu.org_url)
        await emu.set_faults(latency_seconds=LATENCY)
        seen = rng.randint(5, 15)
        job_id = await kill_when_created(emu, ["run", str(SAMPLE), "--config", str(config)], tmp_path, seen)
        for _ in range(2):
            seen = len((await emu.state())["work_items"]) + rng.randint(5, 15)
            again = await kill_when_created(emu, ["resume", job_id, "--config", str(config)], tmp_path, seen)
            assert again == job_id
        killed_at = len((await emu.state())["work_items"])
        env = child_env({"AZURE_DEVOPS_PAT": "e2e-pat"})
        proc = await spawn(backlogd_command("resume", job_id, "--config", str(config)), env, tmp_path)
        rc, out, err = await finish(proc)
        emu_state = await emu.state()
    assert rc == 0, out[-2000:] + err[-2000:]
    assert "status: completed" in out
    async with Store.open(tmp_path / "backlogd.sqlite3") as store:
        rows = await store.items(job_id)
        job = await store.get_job(job_id)
    assert job is not None and job.status == "completed"
    assert killed_at < len(emu_state["work_items"])  # the last kill really was mid-upload
    check_exactly_once(rows, emu_state)
    assert any(r.attempts > 1 for r in rows)  # some leases died with a process and were reclaimed
