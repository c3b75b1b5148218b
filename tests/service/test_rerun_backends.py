"""A re-run on both store backends: the same labels, the same work items taken over, no duplicate."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from service.composition import build_services
from service.requests import JobRequest, LimitsRequest
from tests.conftest import make_settings
from tests.pgdb import BACKENDS, fresh_database
from tests.web.test_rerun import VISION_A, VISION_B
from vocab import JobStatus


@pytest.fixture(params=BACKENDS)
async def database_url(request: pytest.FixtureRequest) -> AsyncIterator[str | None]:
    """None (the SQLite file of the settings) or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield None
        return
    async with fresh_database() as url:
        yield url


async def test_update_of_takes_over_the_previous_work_items(tmp_path: Path, database_url: str | None) -> None:
    """Job B (update_of A, one key feature more) labels 29 items unchanged, 1 updated, 15 new on either
    backend, creates work items only for the new ones and updates the changed epic (rev 2)."""
    settings = make_settings(
        tmp_path,
        database={"path": str(tmp_path / "db.sqlite3"), "url": database_url},
        azure_devops={"target": "emulator"},
    )
    limits = LimitsRequest(max_epics=3)
    async with build_services(settings, {}, backoff_base=0.001) as services:
        assert services.emulator is not None
        job_a = await services.jobs.submit(JobRequest(vision=VISION_A, limits=limits))
        assert (await services.jobs.wait(job_a)).status == JobStatus.COMPLETED
        before = set(services.emulator.state.items)
        job_b = await services.jobs.submit(JobRequest(vision=VISION_B, limits=limits, update_of=job_a))
        assert (await services.jobs.wait(job_b)).status == JobStatus.COMPLETED
        rows = await services.store.items(job_b)
        created = set(services.emulator.state.items) - before
        revs = {w.id: w.rev for w in services.emulator.state.items.values()}
    assert Counter(r.match for r in rows) == {"unchanged": 29, "new": 15, "updated": 1}
    work_items = {r.ado_id for r in rows if r.match == "new" and r.kind not in ("test_plan", "test_suite")}
    assert created == work_items
    assert all(r.state == "uploaded" for r in rows)
    updated = next(r for r in rows if r.match == "updated")
    assert updated.ado_id in before and revs[updated.ado_id] == updated.ado_rev == 2
