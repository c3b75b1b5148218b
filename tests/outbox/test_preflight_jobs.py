"""A job runs its target's pre-flight before any LLM call: fatal problems stop it with no tokens spent;
no Test Plans access lets it run without QA and say so."""

from __future__ import annotations

from pathlib import Path

from emulator.config import EmulatorConfig
from service.composition import build_services
from service.requests import JobRequest
from tests.outbox.test_upload_service import VISION, emulator_state, run_job, settings_for, standalone
from tests.outbox.test_upload_support import PAT, PROJECT, check_exactly_once


async def test_fatal_preflight_problem_fails_the_job_before_any_llm_call(tmp_path: Path) -> None:
    """A custom required field nobody fills fails the job at once, naming the field and the fix; no
    LLM call is made and nothing is written to the organization."""
    config = EmulatorConfig(
        projects=((PROJECT, "Agile"),), pats=frozenset({PAT}), required_fields={"Task": ("Custom.Cost",)}
    )
    async with standalone(config) as emulator:
        settings = settings_for(tmp_path, target="ado", organization_url=emulator.url)
        async with build_services(settings, {"AZURE_DEVOPS_PAT": PAT}) as services:
            job = await run_job(services, JobRequest(vision=VISION))
            calls = await services.store.calls(job.id)
            items = await services.store.items(job.id)
        emu = await emulator_state(emulator)
    assert job.status == "failed"
    assert job.error is not None and job.error.startswith("pre-flight check failed")
    assert "Custom.Cost" in job.error and "field_defaults" in job.error
    assert calls == [] and items == []
    assert emu["work_items"] == [] and emu["test_plans"] == []
    assert job.metadata["preflight"]["problems"][0]["code"] == "required_field"


async def test_no_test_plans_access_runs_without_qa_and_says_so(tmp_path: Path) -> None:
    """Without Basic + Test Plans the job generates no QA, uploads the backlog exactly once, ends
    ``completed`` and carries the warning."""
    config = EmulatorConfig(projects=((PROJECT, "Agile"),), pats=frozenset({PAT}), test_plans_access=False)
    async with standalone(config) as emulator:
        settings = settings_for(tmp_path, target="ado", organization_url=emulator.url)
        async with build_services(settings, {"AZURE_DEVOPS_PAT": PAT}) as services:
            job = await run_job(services, JobRequest(vision=VISION))
            rows = await services.store.items(job.id)
        emu = await emulator_state(emulator)
    assert job.status == "completed"
    assert rows and not [r for r in rows if r.kind in ("test_plan", "test_suite", "test_case")]
    assert any("Basic + Test Plans" in w for w in job.metadata["warnings"])
    check_exactly_once(rows, emu)


async def test_job_stopped_by_preflight_starts_over_with_the_right_pat(tmp_path: Path) -> None:
    """A job failed at pre-flight by a refused PAT starts over from the check when retried with the
    right PAT, and then completes with every item uploaded once."""
    async with standalone(EmulatorConfig(projects=((PROJECT, "Agile"),), pats=frozenset({PAT}))) as emulator:
        settings = settings_for(tmp_path, target="ado", organization_url=emulator.url)
        async with build_services(settings, {"AZURE_DEVOPS_PAT": "refused-pat"}) as services:
            job = await run_job(services, JobRequest(vision=VISION))
            assert job.status == "failed" and "the PAT was refused" in (job.error or "")
            assert await services.jobs.retry_uploads(job.id, pat=PAT) == 0
            job = await services.jobs.wait(job.id)
            rows = await services.store.items(job.id)
        emu = await emulator_state(emulator)
    assert job.status == "completed"
    check_exactly_once(rows, emu)
