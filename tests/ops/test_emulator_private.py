"""Hole 3: the embedded emulator is private. Its API and its control routes answer only to the PAT it
was started with (made up per start, handed to the uploader), the control routes exist only with
``emulator.control: true``, it binds loopback only, and no work item id is ever handed out twice."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from emulator.config import EmulatorConfig
from emulator.server import RunningEmulator, serve
from service.composition import build_services
from service.requests import JobRequest
from service.settings import Settings
from tests.fakes.emulator_control import control_headers, emulator_state, set_faults
from tests.ops.conftest import VISION, make_settings


def embedded(tmp_path: Path, control: bool) -> Settings:
    return make_settings(tmp_path, azure_devops={"target": "emulator"}, emulator={"control": control})


async def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str]:
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers or {}) as resp:
        return resp.status, await resp.text()


async def _post(url: str, body: Any, headers: dict[str, str] | None = None) -> int:
    async with aiohttp.ClientSession() as session, session.post(url, json=body, headers=headers) as resp:
        return resp.status


async def test_the_embedded_emulator_refuses_anonymous_reads(tmp_path: Path) -> None:
    """The probe (GET /_emulator/state, and the work item API, with no credential or a wrong one) gets
    nothing, whether control is off (404) or on (401); the uploader still uploads with the made-up PAT."""
    for control in (False, True):
        async with build_services(embedded(tmp_path / str(control), control), {}) as services:
            emulator = services.emulator
            assert emulator is not None and emulator.pat
            job_id = await services.jobs.submit(JobRequest.model_validate({"vision": VISION}))
            assert (await services.jobs.wait(job_id)).status == "completed"
            item = next(i for i in await services.store.items(job_id) if i.ado_id is not None)
            api = f"{emulator.url}/Backlogd/_apis/wit/workitems/{item.ado_id}?api-version=7.1"
            suppress = {"X-TFS-FedAuthRedirect": "Suppress"}
            for headers in (suppress, {**control_headers("guess")}):
                status, text = await _get(f"{emulator.base_url}/_emulator/state", headers)
                assert status == (401 if control else 404) and item.title not in text
                status, text = await _get(api, headers)
                assert status == 401 and item.title not in text
            assert await _post(f"{emulator.base_url}/_emulator/reset", {}, suppress) in (401, 404)
            assert await _post(f"{emulator.base_url}/_emulator/faults", {"error_500": 1}, suppress) in (
                401,
                404,
            )
            status, text = await _get(api, control_headers(emulator.pat))
            assert status == 200 and item.title in text


async def test_the_control_routes_are_off_unless_configured(tmp_path: Path) -> None:
    """Without emulator.control even the emulator's own PAT finds no /_emulator/* route."""
    async with build_services(embedded(tmp_path, control=False), {}) as services:
        emulator = services.emulator
        assert emulator is not None and emulator.pat
        status, _ = await _get(f"{emulator.base_url}/_emulator/state", control_headers(emulator.pat))
        assert status == 404


async def test_the_emulator_listens_on_loopback_only(tmp_path: Path) -> None:
    """serve() refuses a non-loopback address, and so does ``backlogd emulator --host 0.0.0.0``."""
    with pytest.raises(ValueError, match="loopback"):
        await serve(EmulatorConfig(), "0.0.0.0", 0)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "web.main", "emulator", "--host", "0.0.0.0", "--port", "0",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, cwd=tmp_path,
        env={"PYTHONPATH": str(Path(__file__).parents[2]), "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 2 and b"loopback" in err and b"emulator:" not in out


async def _titles(emulator: RunningEmulator) -> dict[int, str]:
    state = await emulator_state(emulator)
    return {w["id"]: w["title"] for w in state["work_items"]}


async def test_work_item_ids_are_never_reused_across_resets_and_restarts(tmp_path: Path) -> None:
    """Job 1 uploads, the emulator is reset, job 2 uploads, the service restarts: job 2's ids are new,
    and after the restart each of job 2's links still opens job 2's own work item."""
    settings = embedded(tmp_path, control=True)
    async with build_services(settings, {}) as services:
        assert services.emulator is not None
        first = await services.jobs.submit(JobRequest.model_validate({"vision": VISION}))
        assert (await services.jobs.wait(first)).status == "completed"
        ids_1 = {i.ado_id for i in await services.store.items(first)}
        url, headers = (
            f"{services.emulator.base_url}/_emulator/reset",
            control_headers(services.emulator.pat or ""),
        )
        assert await _post(url, {}, headers) == 200
        await set_faults(services.emulator, {})
        second = await services.jobs.submit(JobRequest.model_validate({"vision": VISION + " Owners pay."}))
        assert (await services.jobs.wait(second)).status == "completed"
        items_2 = {i.ado_id: i.title for i in await services.store.items(second) if i.ado_id is not None}
        assert not ids_1 & set(items_2)
    async with build_services(settings, {}) as services:
        assert services.emulator is not None
        titles = await _titles(services.emulator)
        for ado_id, title in items_2.items():
            if ado_id in titles:  # work items (plans and suites are listed apart)
                assert titles[ado_id] == title
        assert not ids_1 & set(titles)  # the reset is replayed: job 1's items are gone, not renamed
