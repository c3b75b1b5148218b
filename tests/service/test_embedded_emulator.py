"""The embedded emulator (the default target) keeps its work items across restarts of the service."""

from __future__ import annotations

import asyncio
from pathlib import Path

from service.composition import build_services
from service.requests import JobRequest
from service.settings import Settings
from tests.fakes.emulator_control import emulator_state

VISION = {
    "title": "Tool library",
    "vision": "Neighbours lend and borrow tools. Lenders see who has their drill.",
    "target_users": ["Lenders", "Borrowers"],
    "key_features": ["Lending calendar", "Return reminders"],
}


def settings_in(tmp_path: Path) -> Settings:
    return Settings.model_validate(
        {
            "database": {"path": str(tmp_path / "state" / "backlogd.sqlite3")},
            "workflow": {
                "limits": {
                    "max_epics": 2,
                    "max_features_per_epic": 2,
                    "max_stories_per_feature": 2,
                    "max_tasks_per_story": 2,
                    "max_test_cases_per_story": 2,
                }
            },
            "azure_devops": {"target": "emulator"},
            "emulator": {"control": True},  # the tests read its state (with the PAT it was started with)
        }
    )


async def test_uploaded_items_keep_their_ids_and_links_after_a_restart(tmp_path: Path) -> None:
    """After a restart the emulator replays its journal: every uploaded item's id exists again, under
    the same URL, and a new job's items get new ids instead of colliding with the old ones."""
    settings = settings_in(tmp_path)
    async with build_services(settings, {}) as services:
        assert services.emulator is not None
        first = await services.jobs.submit(JobRequest(vision=VISION))
        assert (await services.jobs.wait(first)).status == "completed"
        before = {i.ado_id: i.ado_url for i in await services.store.items(first)}
        url = services.emulator.base_url
    async with build_services(settings, {}) as services:
        assert services.emulator is not None
        assert services.emulator.base_url == url  # the remembered port was free
        state = await emulator_state(services.emulator)
        ids = {w["id"] for w in state["work_items"]} | {p["id"] for p in state["test_plans"]}
        ids |= {s["id"] for s in state["suites"]}
        assert set(before) <= ids
        second = await services.jobs.submit(JobRequest(vision=VISION))
        assert (await services.jobs.wait(second)).status == "completed"
        again = {i.ado_id for i in await services.store.items(second)}
        assert not again & set(before)


async def test_a_job_stopped_mid_upload_finishes_exactly_once_after_a_restart(tmp_path: Path) -> None:
    """Stop the service while a job uploads, start it again: the job resumes and every item exists
    exactly once in the emulator, under the parent it had (nothing dead, nothing duplicated)."""
    settings = settings_in(tmp_path)
    async with build_services(settings, {}) as services:
        job_id = await services.jobs.submit(JobRequest(vision=VISION))
        sub = services.broadcaster.subscribe(job_id)
        uploads = 0
        while uploads < 5:  # stop once a few items reached the emulator
            event = await asyncio.wait_for(sub.get(), 10)
            assert event is not None
            uploads += event.type == "upload" and event.payload["state"] == "uploaded"
        sub.close()
    async with build_services(settings, {}) as services:
        assert services.emulator is not None
        stopped = await services.store.items(job_id)
        assert any(i.state == "uploaded" for i in stopped) and any(i.state != "uploaded" for i in stopped)
        await services.jobs.resume_unfinished()
        job = await services.jobs.wait(job_id)
        assert job.status == "completed", job.error
        items = await services.store.items(job_id)
        state = await emulator_state(services.emulator)
    by_tag = state["creates_by_tag"]
    keys = {tag: n for tag, n in by_tag.items() if tag.startswith("bk-")}  # bi- is the job's run tag
    assert keys and all(n == 1 for n in keys.values()), {k: v for k, v in keys.items() if v != 1}
    work_items = {w["id"]: w for w in state["work_items"]}
    ado = {i.id: i.ado_id for i in items}
    for item in items:
        assert item.state == "uploaded"
        if item.kind in ("feature", "story", "task") and item.parent_id:
            assert work_items[item.ado_id]["parent_id"] == ado[item.parent_id]
