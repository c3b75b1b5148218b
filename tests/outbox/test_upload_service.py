"""Uploads through the composed service (``build_services``, ``JobManager``): generated backlogs reach the
emulator exactly once under faults, streaming starts before generation ends, and bad targets end dead
(never lost) until fixed and retried.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from emulator.config import EmulatorConfig
from emulator.server import RunningEmulator, serve
from outbox.records import JobRow
from outbox.relay import idempotency_key
from service.composition import Services, build_services
from service.requests import AdoRequest, JobRequest
from service.settings import Settings
from stages.vision import parse_bytes
from tests.fakes.emulator_control import emulator_state, set_faults
from tests.fakes.openai_server import FakeLLM
from tests.outbox.test_upload_support import PAT, PROJECT, ServerFactory, check_exactly_once

SAMPLE = Path(__file__).resolve().parents[2] / "samples" / "clinic-scheduling.yaml"
VISION = parse_bytes(SAMPLE.read_bytes(), SAMPLE.name).model_dump(
    include={"title", "domain", "vision", "target_users", "key_features", "success_metrics", "constraints"}
)
SMALL = {
    "max_epics": 2,
    "max_features_per_epic": 2,
    "max_stories_per_feature": 2,
    "max_tasks_per_story": 2,
    "max_test_cases_per_story": 2,
}


def settings_for(tmp_path: Path, **ado: Any) -> Settings:
    llm = ado.pop("llm", {})
    return Settings.model_validate(
        {
            "database": {"path": str(tmp_path / "backlogd.sqlite3")},
            "server": {"shutdown_grace_seconds": 1.0},
            "llm": llm,
            "workflow": {"limits": SMALL, "parallel_processing": {"max_workers": 1}},
            "azure_devops": {"project": PROJECT, "max_concurrency": 8, **ado},
            "emulator": {"control": True},  # the tests read the embedded emulator's state
        }
    )


async def run_job(services: Services, request: JobRequest, limit: float = 30.0) -> JobRow:
    job_id = await services.jobs.submit(request)
    return await asyncio.wait_for(services.jobs.wait(job_id), limit)


@asynccontextmanager
async def standalone(config: EmulatorConfig) -> AsyncIterator[RunningEmulator]:
    emulator = await serve(config.model_copy(update={"control": True}), "127.0.0.1", 0)
    try:
        yield emulator
    finally:
        await emulator.close()


async def test_generated_backlog_survives_a_fault_storm_in_the_embedded_emulator(tmp_path: Path) -> None:
    """A generated backlog reaches the embedded emulator exactly once under 429/503/reset/lost responses."""
    limits = {**SMALL, "max_epics": 3, "max_features_per_epic": 3, "max_tasks_per_story": 3}
    settings = settings_for(tmp_path, target="emulator", upload_retry_attempts=40)
    settings = settings.model_copy(
        update={
            "workflow": settings.workflow.model_copy(
                update={"limits": settings.workflow.limits.model_copy(update=limits)}
            )
        }
    )
    async with build_services(settings, {}) as services:
        assert services.emulator is not None and services.relay is not None
        services.relay.backoff_base, services.relay.backoff_cap = 0.01, 0.2  # keep it quick
        storm = {
            "throttle": 0.10,
            "error_503": 0.05,
            "reset": 0.03,
            "lose_response": 0.05,
            "retry_after_seconds": 0.15,
            "early_grace_seconds": 0.04,
            "seed": 3,
        }
        # The grace covers requests already on the wire when a 429 left: generation shares this event
        # loop with the client and the embedded emulator, so on a busy machine a 429 can take tens of ms
        # to be seen; a client that ignored Retry-After would still send in the 110 ms after the grace.
        await set_faults(services.emulator, storm)
        job = await run_job(services, JobRequest(vision=VISION))
        rows = await services.store.items(job.id)
        emu = await emulator_state(services.emulator)
    assert job.status == "completed", job.error
    assert 100 <= len(rows) <= 300
    check_exactly_once(rows, emu)
    assert emu["early_requests"] == 0
    assert sum(emu["faults_injected"].values()) >= 10


async def test_streaming_uploads_start_before_generation_ends(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """With a slow LLM, the first upload event is committed before the last generated item."""
    llm = FakeLLM(latency=0.05)
    server = await aiohttp_server(llm.app)
    settings = settings_for(
        tmp_path,
        target="emulator",
        upload_mode="streaming",
        llm={"provider": "openai", "base_url": str(server.make_url("/v1")), "api_key_env": None},
    )
    async with build_services(settings, {}) as services:
        job = await run_job(services, JobRequest(vision=VISION))
        events = await services.store.events_after(job.id, 0)
        rows = await services.store.items(job.id)
    assert job.status == "completed", job.error
    assert {r.state for r in rows} == {"uploaded"}
    types = [e.type for e in events]
    first_upload = types.index("upload")
    last_item = len(types) - 1 - types[::-1].index("item")
    assert first_upload < last_item


async def test_rule_violation_kills_item_blocks_children_and_retry_completes(tmp_path: Path) -> None:
    """A TF401320 rule error (a rule added after the pre-flight check) makes features dead with the
    message and their subtrees blocked; after the rule is fixed, ``retry_uploads`` uploads everything
    exactly once."""
    clean = EmulatorConfig(projects=((PROJECT, "Agile"),), pats=frozenset({PAT}))
    async with standalone(clean) as emulator:
        settings = settings_for(tmp_path, target="ado", organization_url=emulator.url)
        async with build_services(settings, {"AZURE_DEVOPS_PAT": PAT}) as services:
            job = await run_job(services, JobRequest(vision=VISION, upload_mode="manual"))
            assert job.status == "awaiting_upload"
            # an administrator adds a required field after the check
            required = {"Feature": ("Custom.Reviewer",)}
            emulator.state.config = emulator.state.config.model_copy(update={"required_fields": required})
            await services.jobs.start_upload(job.id)
            job = await asyncio.wait_for(services.jobs.wait(job.id), 30)
            rows = await services.store.items(job.id)
            assert job.status == "completed_with_errors"
            dead = [r for r in rows if r.state == "dead"]
            assert {r.kind for r in dead} == {"feature"} and len(dead) == 4
            assert all("TF401320" in (r.error or "") and "Custom.Reviewer" in (r.error or "") for r in dead)
            blocked = [r for r in rows if r.state == "blocked"]
            assert {r.kind for r in blocked} == {"story", "task", "test_case", "test_plan", "test_suite"}
            assert all("could not be uploaded" in (r.error or "") for r in blocked)
            assert {r.state for r in rows if r.kind == "epic"} == {"uploaded"}
            events = await services.store.events_after(job.id, 0)
            reported = {e.payload["id"]: e.payload for e in events if e.type == "upload"}
            assert all("TF401320" in reported[r.id]["error"] for r in dead)

            # Fix the rule in the organization (an administrator's change), then retry.
            emulator.state.config = emulator.state.config.model_copy(update={"required_fields": {}})
            moved = await services.jobs.retry_uploads(job.id)
            assert moved == len(dead) + len(blocked)
            job = await asyncio.wait_for(services.jobs.wait(job.id), 30)
            rows = await services.store.items(job.id)
        assert job.status == "completed"
        check_exactly_once(rows, await emulator_state(emulator))


async def test_wrong_pat_is_reported_dead_then_retry_with_the_right_pat_completes(tmp_path: Path) -> None:
    """A PAT refused at upload time (a manual upload, past no pre-flight) ends every root item dead with
    an auth message (nothing lost); retry with the right PAT uploads the whole backlog, and no PAT is
    ever written to the database."""
    wrong = "wrong-pat-0123456789"
    async with standalone(EmulatorConfig(projects=((PROJECT, "Agile"),), pats=frozenset({PAT}))) as emulator:
        settings = settings_for(tmp_path, target="ado", organization_url=emulator.url)
        async with build_services(settings, {"AZURE_DEVOPS_PAT": wrong}) as services:
            job = await run_job(services, JobRequest(vision=VISION, upload_mode="manual"))
            await services.jobs.start_upload(job.id)
            job = await asyncio.wait_for(services.jobs.wait(job.id), 30)
            rows = await services.store.items(job.id)
            assert job.status == "completed_with_errors"
            assert {(r.kind, r.state) for r in rows if r.state == "dead"} == {("epic", "dead")}
            assert all("PAT" in (r.error or "") for r in rows if r.state == "dead")
            assert {r.state for r in rows} == {"dead", "blocked"}
            await services.jobs.retry_uploads(job.id, pat=PAT)
            job = await asyncio.wait_for(services.jobs.wait(job.id), 30)
            rows = await services.store.items(job.id)
        assert job.status == "completed"
        check_exactly_once(rows, await emulator_state(emulator))
    raw = await asyncio.to_thread(
        lambda: b"".join(p.read_bytes() for p in tmp_path.glob("backlogd.sqlite3*"))
    )
    assert PAT.encode() not in raw and wrong.encode() not in raw


async def test_unknown_project_is_reported_dead_then_retry_after_it_exists_completes(tmp_path: Path) -> None:
    """An unknown project at upload time (a manual upload) ends the root items dead with a not-found
    message; once the project exists, retry uploads everything exactly once."""
    config = EmulatorConfig(projects=(("Other", "Agile"),), pats=frozenset({PAT}))
    async with standalone(config) as emulator:
        settings = settings_for(tmp_path, target="ado", organization_url=emulator.url)
        async with build_services(settings, {"AZURE_DEVOPS_PAT": PAT}) as services:
            request = JobRequest(
                vision=VISION, azure_devops=AdoRequest(project="Missing"), upload_mode="manual"
            )
            job = await run_job(services, request)
            await services.jobs.start_upload(job.id)
            job = await asyncio.wait_for(services.jobs.wait(job.id), 30)
            rows = await services.store.items(job.id)
            assert job.status == "completed_with_errors"
            dead = [r for r in rows if r.state == "dead"]
            assert {r.kind for r in dead} == {"epic"}
            assert all("project Missing does not exist" in (r.error or "") for r in dead), dead[0].error
            assert {r.state for r in rows} == {"dead", "blocked"}
            # The organization gains the project (as an administrator would create it); nothing else changed.
            emulator.state.config = emulator.state.config.model_copy(
                update={"projects": (("Other", "Agile"), ("Missing", "Scrum"))}
            )
            emulator.state.reset()
            await services.jobs.retry_uploads(job.id)
            job = await asyncio.wait_for(services.jobs.wait(job.id), 30)
            rows = await services.store.items(job.id)
            emu = await emulator_state(emulator)
        assert job.status == "completed"
        check_exactly_once(rows, emu)
        assert {w["project"] for w in emu["work_items"]} == {"Missing"}


async def test_missing_work_item_type_kills_only_the_items_of_that_type(tmp_path: Path) -> None:
    """A Basic project has no test types: pre-flight switches QA off, the job ends ``completed`` with a
    warning saying so, and every backlog item is uploaded exactly once (no dead QA items)."""
    async with standalone(EmulatorConfig(projects=((PROJECT, "Basic"),), pats=frozenset({PAT}))) as emulator:
        settings = settings_for(tmp_path, target="ado", organization_url=emulator.url)
        async with build_services(settings, {"AZURE_DEVOPS_PAT": PAT}) as services:
            job = await run_job(services, JobRequest(vision=VISION))
            rows = await services.store.items(job.id)
            final = (await services.store.events_after(job.id, 0))[-1]
        emu = await emulator_state(emulator)
    assert job.status == "completed"
    assert not [r for r in rows if r.kind in ("test_plan", "test_suite", "test_case")]
    assert any("not available for process Basic" in w for w in job.metadata["warnings"])
    assert final.type == "final" and "not available for process Basic" in final.payload["warnings"][0]
    backlog = rows
    assert {r.state for r in backlog} == {"uploaded"}
    creates = {tag: n for tag, n in emu["creates_by_tag"].items() if tag.startswith("bk-")}
    assert creates == {idempotency_key(r.id): 1 for r in backlog}
    assert len(emu["work_items"]) == len(backlog)
