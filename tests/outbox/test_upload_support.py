"""Shared helpers for the outbox upload tests: a backlog tree, a relay wired to the emulator, checks.

(No tests here; the name only keeps it among the upload tests.) The tree follows the runner's shape:
epic → feature → (test plan, story → (test suite, task, test case)); a suite depends on its feature's
plan and a test case on its story's suite.
"""

from __future__ import annotations

import asyncio
import base64
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from emulator.app import create_emulator_app
from emulator.config import EmulatorConfig, FaultConfig
from outbox.ado.client import AdoClient
from outbox.ado.gate import RateGate
from outbox.ado.types import AdoTarget
from outbox.backend import StoreBackend
from outbox.records import EventRow, ItemRow, NewItem
from outbox.relay import Relay, Uploader, idempotency_key
from outbox.store import Store
from tests.fakes.emulator_control import control_headers
from tests.fakes.gate import SimpleGate
from tests.jobrows import OPTIONS, VISION

PROJECT = "Backlogd"
PAT = "upload-pat"
WORK_ITEM_KINDS = ("epic", "feature", "story", "task", "test_case")
ServerFactory = Callable[..., Any]
_NS = uuid.UUID("2f1d3c1e-7d55-4a8e-9b0f-3a9e4f1b8c21")

BODIES: dict[str, dict[str, Any]] = {
    "epic": {"description": 'An epic <b>with</b> & "markup".', "priority": 1, "business_value": 10},
    "feature": {"description": "A feature.", "priority": 2},
    "story": {
        "user_story": "As a user, I want it, so that it helps",
        "acceptance_criteria": ["Given a When b Then c"],
        "story_points": 3,
        "priority": 2,
    },
    "task": {"description": "Do it.", "estimate_hours": 4.0, "activity": "Development"},
    "test_case": {"steps": [{"action": "Open the page", "expected": "It shows"}], "priority": 2},
    "test_plan": {"description": "Tests of a feature."},
    "test_suite": {},
}


class FakeClock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def _id(*parts: object) -> str:
    return str(uuid.uuid5(_NS, "/".join(map(str, parts))))


def _item(
    job: str,
    kind: str,
    level: int,
    pos: int,
    parent: str | None,
    *parts: object,
    depends: tuple[str, ...] = (),
    state: str = "pending",
) -> NewItem:
    title = f"{kind} {'.'.join(map(str, parts))}"
    return NewItem(
        id=_id(job, kind, *parts),
        parent_id=parent,
        depends_on=depends,
        kind=kind,
        level=level,
        position=pos,
        title=title,
        body={"title": title, **BODIES[kind]},
        state=state,
    )


def tree(
    job: str,
    epics: int = 1,
    features: int = 1,
    stories: int = 1,
    tasks: int = 1,
    cases: int = 1,
    *,
    qa: bool = True,
    state: str = "pending",
) -> list[NewItem]:
    """A backlog of the runner's shape, parents before children."""
    out: list[NewItem] = []
    for e in range(epics):
        epic = _item(job, "epic", 0, e, None, e, state=state)
        out.append(epic)
        for f in range(features):
            feat = _item(job, "feature", 1, f, epic.id, e, f, state=state)
            out.append(feat)
            plan = _item(job, "test_plan", 2, 0, feat.id, e, f, state=state)
            if qa:
                out.append(plan)
            for s in range(stories):
                story = _item(job, "story", 2, s, feat.id, e, f, s, state=state)
                out.append(story)
                suite = _item(job, "test_suite", 3, 0, story.id, e, f, s, depends=(plan.id,), state=state)
                if qa:
                    out.append(suite)
                out += [_item(job, "task", 3, t, story.id, e, f, s, t, state=state) for t in range(tasks)]
                if qa:
                    out += [
                        _item(job, "test_case", 4, c, story.id, e, f, s, c, depends=(suite.id,), state=state)
                        for c in range(cases)
                    ]
    return out


async def stage(store: StoreBackend, job: str, items: list[NewItem]) -> None:
    await store.create_job(job, VISION, OPTIONS, {})
    await store.stage_items(job, "staged", items)


def emulator_config(faults: FaultConfig | None = None, **kw: Any) -> EmulatorConfig:
    kw.setdefault("control", True)  # the tests read the state and set faults (with the PAT)
    return EmulatorConfig(
        projects=((PROJECT, "Agile"),), pats=frozenset({PAT}), faults=faults or FaultConfig(), **kw
    )


@dataclass
class UploadRig:
    """A store, an emulator on loopback, one ADO client behind ``gate`` and a relay using it."""

    store: Store
    server: TestServer
    session: aiohttp.ClientSession
    gate: RateGate
    client: AdoClient
    relay: Relay
    events: list[EventRow] = field(default_factory=list)

    @property
    def base(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def state(self) -> dict[str, Any]:
        async with self.session.get(f"{self.base}/_emulator/state", headers=control_headers(PAT)) as resp:
            data: dict[str, Any] = await resp.json()
            return data

    async def set_faults(self, **faults: Any) -> None:
        url, headers = f"{self.base}/_emulator/faults", control_headers(PAT)
        async with self.session.post(url, json=faults, headers=headers) as resp:
            assert resp.status == 200, await resp.text()

    async def upload(self, job: str, limit: float = 30.0) -> None:
        """Activate the job and wait until nothing is pending, in flight or waiting to retry."""
        self.relay.activate(job)
        try:
            await asyncio.wait_for(self.relay.settled(job), limit)
        finally:
            self.relay.deactivate(job)


@asynccontextmanager
async def upload_rig(
    aiohttp_server: ServerFactory,
    tmp_path: Path,
    config: EmulatorConfig | None = None,
    *,
    gate: RateGate | None = None,
    concurrency: int = 8,
    pat: str = PAT,
    project: str = PROJECT,
    clock: Callable[[], float] | None = None,
    target_kw: dict[str, Any] | None = None,
    **relay_kw: Any,
) -> AsyncIterator[UploadRig]:
    server = await aiohttp_server(
        create_emulator_app((config or emulator_config()).model_copy(update={"control": True}))
    )
    gate = gate or SimpleGate(concurrency)
    async with Store.open(tmp_path / "outbox.sqlite3") as store, aiohttp.ClientSession() as session:
        org = str(server.make_url("/backlogd"))
        target = AdoTarget(org, project, pat, timeout_seconds=5.0, **(target_kw or {}))
        client = AdoClient(session, target, gate)
        events: list[EventRow] = []

        async def clients(job_id: str) -> Uploader | None:
            return client

        relay_kw.setdefault("poll_seconds", 0.01)
        relay_kw.setdefault("backoff_base", 0.005)
        relay_kw.setdefault("backoff_cap", 0.05)
        if clock is not None:
            relay_kw["clock"] = clock
        relay = Relay(store, clients=clients, publish=events.extend, concurrency=concurrency, **relay_kw)
        task = asyncio.create_task(relay.run())
        try:
            yield UploadRig(store, server, session, gate, client, relay, events)
        finally:
            await relay.stop(1.0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


def basic_auth(pat: str = PAT) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f":{pat}".encode()).decode()}


def check_exactly_once(rows: list[ItemRow], emu: dict[str, Any]) -> None:
    """Every row uploaded; one work item per work-item row (one create per key); parents as in our tree."""
    assert {r.state for r in rows} == {"uploaded"}, {
        r.id: (r.state, r.error) for r in rows if r.state != "uploaded"
    }
    by_id = {r.id: r for r in rows}
    wi_rows = [r for r in rows if r.kind in WORK_ITEM_KINDS]
    keys = {idempotency_key(r.id) for r in wi_rows}
    creates = {tag: n for tag, n in emu["creates_by_tag"].items() if tag.startswith("bk-")}
    assert creates == dict.fromkeys(keys, 1)
    assert len(emu["work_items"]) == len(wi_rows)
    items = {w["id"]: w for w in emu["work_items"]}
    for r in wi_rows:
        assert r.ado_id is not None
        work_item = items[r.ado_id]
        assert idempotency_key(r.id) in work_item["tags"]
        parent = by_id[r.parent_id].ado_id if r.parent_id else None
        if r.kind == "test_case":
            assert parent in {rel["target"] for rel in work_item["relations"]}
        else:
            assert work_item["parent_id"] == parent
    plans = {p["id"]: p for p in emu["test_plans"]}
    suites = {s["id"]: s for s in emu["suites"]}
    assert len(plans) == sum(1 for r in rows if r.kind == "test_plan")
    for r in rows:
        if r.kind == "test_suite":
            suite = suites[r.ado_id]
            assert suite["requirement_id"] == by_id[r.parent_id or ""].ado_id
            assert suite["plan_id"] == by_id[r.depends_on[0]].ado_id
        if r.kind == "test_case":
            suite = suites[by_id[r.depends_on[0]].ado_id]
            assert suite["test_case_ids"].count(r.ado_id) == 1
    requirement_suites = [s for s in suites.values() if s["suite_type"] == "requirementTestSuite"]
    assert len(requirement_suites) == sum(1 for r in rows if r.kind == "test_suite")
