"""Shared helpers for the ADO client tests: an emulator on loopback, a client for it, items per kind.

(No tests here; the file name only keeps it among the ADO client's test files.)
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from emulator.app import create_emulator_app
from emulator.config import EmulatorConfig, FaultConfig
from outbox.ado.client import AdoClient
from outbox.ado.types import AdoTarget, UploadItem
from tests.fakes.emulator_control import control_headers
from tests.fakes.gate import SimpleGate

PROJECT = "Backlogd"
PAT = "test-pat-123"
ServerFactory = Callable[..., Any]


@dataclass
class Rig:
    client: AdoClient
    session: aiohttp.ClientSession
    server: TestServer
    gate: SimpleGate
    config: EmulatorConfig

    @property
    def org_url(self) -> str:
        return str(self.server.make_url(f"/{self.config.organization}"))

    async def api(self, method: str, path: str, body: Any = None) -> Any:
        """A raw authenticated call to the emulator, independent of the client under test."""
        token = base64.b64encode(f":{PAT}".encode()).decode()
        headers = {"Authorization": f"Basic {token}", "X-TFS-FedAuthRedirect": "Suppress"}
        sep = "&" if "?" in path else "?"
        url = f"{self.org_url}/{path}{sep}api-version=7.1"
        async with self.session.request(method, url, json=body, headers=headers) as resp:
            assert resp.status == 200, await resp.text()
            return await resp.json(content_type=None)

    async def work_item(self, ado_id: int) -> dict[str, Any]:
        data: dict[str, Any] = await self.api(
            "GET", f"{PROJECT}/_apis/wit/workitems/{ado_id}?$expand=relations"
        )
        return data

    async def ids_tagged(self, tag: str) -> list[int]:
        query = f"SELECT [System.Id] FROM WorkItems WHERE [System.Tags] CONTAINS '{tag}'"
        data = await self.api("POST", f"{PROJECT}/_apis/wit/wiql", {"query": query})
        return [int(w["id"]) for w in data["workItems"]]

    async def state(self) -> dict[str, Any]:
        url = self.server.make_url("/_emulator/state")
        async with self.session.get(url, headers=control_headers(PAT)) as resp:
            data: dict[str, Any] = await resp.json()
            return data


def emulator_config(process: str = "Agile", **kwargs: Any) -> EmulatorConfig:
    faults = kwargs.pop("faults", FaultConfig())
    kwargs.setdefault("control", True)  # the tests read the state (with the PAT)
    return EmulatorConfig(projects=((PROJECT, process),), pats=frozenset({PAT}), faults=faults, **kwargs)


@asynccontextmanager
async def rig(
    aiohttp_server: ServerFactory,
    config: EmulatorConfig | None = None,
    *,
    pat: str = PAT,
    project: str = PROJECT,
    area_path: str = "",
    iteration_path: str = "",
    timeout_seconds: float = 5.0,
    **target_kw: Any,
) -> AsyncIterator[Rig]:
    config = config or emulator_config()
    server = await aiohttp_server(create_emulator_app(config.model_copy(update={"control": True})))
    gate = SimpleGate(4)
    async with aiohttp.ClientSession() as session:
        target = AdoTarget(
            str(server.make_url(f"/{config.organization}")),
            project,
            pat,
            area_path=area_path,
            iteration_path=iteration_path,
            timeout_seconds=timeout_seconds,
            **target_kw,
        )
        yield Rig(AdoClient(session, target, gate), session, server, gate, config)


BODIES: dict[str, dict[str, Any]] = {
    "epic": {
        "title": 'Patient <self-service> & "booking"',
        "description": 'Let patients book <b>online</b> & see "slots".\nSecond line.',
        "priority": 1,
        "business_value": 40,
        "sources": ["s1"],
    },
    "feature": {"title": "Online booking", "description": "Book a slot.", "priority": 2, "sources": ["s1"]},
    "story": {
        "title": "Book a slot",
        "user_story": "As a patient, I want to book a slot, so that I avoid calling",
        "description": "The booking page.",
        "acceptance_criteria": [
            "Given a free slot When I book it Then it is mine",
            "Given a taken slot When I book it Then I see <an error>",
            "Given no login When I book Then I am asked to sign in",
        ],
        "story_points": 5,
        "priority": 2,
        "sources": ["s1", "s2"],
    },
    "task": {
        "title": "Build the booking API",
        "description": "POST /bookings",
        "estimate_hours": 6.0,
        "activity": "Development",
        "sources": ["s2"],
    },
    "test_case": {
        "title": "Booking a free slot works",
        "description": "Happy path",
        "preconditions": "A patient account & a free slot",
        "steps": [
            {"action": "Open <booking> page", "expected": 'Slots are "listed"'},
            {"action": "Pick a slot & confirm", "expected": "Booking shown"},
        ],
        "priority": 2,
        "sources": ["s1"],
    },
    "test_plan": {"title": "Online booking", "description": "Tests of the online booking feature"},
    "test_suite": {"title": "Book a slot"},
}


def upload_item(
    kind: str,
    *,
    key: str | None = None,
    parent: int | None = None,
    refs: dict[str, int] | None = None,
    existing: int | None = None,
    body: dict[str, Any] | None = None,
) -> UploadItem:
    data = dict(body or BODIES[kind])
    return UploadItem(
        id=f"item-{kind}",
        job_id="job-1",
        kind=kind,
        title=str(data["title"]),
        body=data,
        key=key or f"bk-{kind}",
        run_tag="bi-run1",
        parent_ado_id=parent,
        refs=refs or {},
        existing_ado_id=existing,
    )
