"""kill -9 of ``backlogd serve`` between an edit and its upload loses nothing.

A real ``backlogd serve`` uploads a backlog to the emulator (its own process, so it outlives the kill);
an uploaded story is edited through the API while every emulator request is slowed down, and the
server is killed before the update can have been acknowledged. After a restart the work item carries
the edited title at exactly one revision more, and no work item was created twice.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from outbox.store import Store
from tests.e2e.helpers import (
    E2E_PAT,
    EmulatorProcess,
    backlogd_command,
    child_env,
    emulator_process,
    kill9,
    read_line_with,
    reap,
    spawn,
)

VISION = "# Bike shop\nCustomers book repairs online. Mechanics see the repair queue. Owners track revenue."
LIMITS = {
    "max_epics": 1,
    "max_features_per_epic": 1,
    "max_stories_per_feature": 2,
    "max_tasks_per_story": 1,
    "max_test_cases_per_story": 1,
}


def write_settings(tmp_path: Path, org_url: str = "") -> Path:
    path = tmp_path / "settings.yaml"
    settings = {
        "server": {"host": "127.0.0.1", "port": 0, "shutdown_grace_seconds": 1},
        "database": {"path": str(tmp_path / "backlogd.sqlite3")},
        "logging": {"level": "warning"},
        "emulator": {"control": True},
        "workflow": {"limits": LIMITS, "include_qa": False, "parallel_processing": {"max_workers": 1}},
        "azure_devops": {
            "target": "ado",
            "organization_url": org_url,
            "project": "Backlogd",
            "pat_env": "AZURE_DEVOPS_PAT",
            "lease_seconds": 1.0,  # the killed owner's lease comes back quickly
            "upload_mode": "after_generation",
        },
    }
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


async def _serve(config: Path, tmp_path: Path) -> tuple[Any, str]:
    proc = await spawn(
        backlogd_command("serve", "--config", str(config)), child_env({"AZURE_DEVOPS_PAT": E2E_PAT}), tmp_path
    )
    base = (await read_line_with(proc, "backlogd: serving on ")).rstrip("/")
    return proc, base


async def _get(session: aiohttp.ClientSession, url: str) -> Any:
    async with session.get(url) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _work_item(emu: EmulatorProcess, ado_id: int) -> dict[str, Any]:
    return next(w for w in (await emu.state())["work_items"] if w["id"] == ado_id)


async def test_kill9_between_an_edit_and_its_upload_loses_nothing(tmp_path: Path) -> None:
    """The edit survives the kill: after a restart the work item has the edited title at rev + 1, and
    the number of work items is unchanged."""
    async with emulator_process(write_settings(tmp_path), tmp_path) as emu:
        config = write_settings(tmp_path, emu.org_url)
        proc, base = await _serve(config, tmp_path)
        try:
            async with aiohttp.ClientSession() as session:
                async with session.post(f"{base}/api/jobs", json={"vision": VISION}) as resp:
                    assert resp.status == 202, await resp.text()
                    job_id = (await resp.json())["job_id"]
                async with asyncio.timeout(60):
                    while True:
                        if (await _get(session, f"{base}/api/jobs/{job_id}"))["status"] == "completed":
                            break
                        await asyncio.sleep(0.05)
                backlog = await _get(session, f"{base}/api/jobs/{job_id}/backlog")
                story = backlog["epics"][0]["features"][0]["stories"][0]
                ado_id, rev = story["upload"]["ado_id"], story["upload"]["rev"]
                count = len((await emu.state())["work_items"])
                await emu.set_faults(latency_seconds=1.5)  # the relay's PATCH cannot finish before the kill
                url = f"{base}/api/jobs/{job_id}/items/{story['id']}"
                async with session.patch(url, json={"title": "Edited before the crash"}) as resp:
                    assert resp.status == 200, await resp.text()
            kill9(proc)
            await proc.wait()
        finally:
            await reap(proc)
        assert (await _work_item(emu, ado_id))["rev"] == rev  # not sent yet when the server died
        await emu.set_faults(latency_seconds=0.0)
        proc, base = await _serve(config, tmp_path)
        try:
            async with asyncio.timeout(30):
                while True:
                    if (await _work_item(emu, ado_id))["title"] == "Edited before the crash":
                        break
                    await asyncio.sleep(0.05)
            async with asyncio.timeout(10):
                while True:
                    async with Store.open(tmp_path / "backlogd.sqlite3") as store:
                        row = next(r for r in await store.items(job_id) if r.id == story["id"])
                    if row.state == "uploaded":
                        break
                    await asyncio.sleep(0.05)
        finally:
            await reap(proc)
        work_item = await _work_item(emu, ado_id)
        state = await emu.state()
    assert work_item["rev"] == rev + 1 and row.ado_rev == rev + 1
    assert len(state["work_items"]) == count
    assert all(n == 1 for tag, n in state["creates_by_tag"].items() if tag.startswith("bk-"))
