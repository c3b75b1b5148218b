"""The offline provider meets every quality target on every sample, stays fast (the 3×4×5 job under
1 s once the services are up), and writes stories a product owner can read: real users, complete
titles, criteria about the story's own capability."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service.composition import build_services
from service.requests import JobRequest
from service.settings import Settings
from stages.vision import parse_bytes
from tests.conftest import SAMPLES, JobResult, make_settings, run_job

Factory = Callable[..., Settings]
DEFAULT_LIMITS = {
    "max_epics": 3,
    "max_features_per_epic": 4,
    "max_stories_per_feature": 4,
    "max_tasks_per_story": 4,
    "max_test_cases_per_story": 3,
}
ALL_SAMPLES = sorted(p.name for p in SAMPLES.iterdir())


def _data(name: str) -> dict[str, Any]:
    return parse_bytes((SAMPLES / name).read_bytes(), name).as_mapping()


@pytest.fixture(scope="module")
def backlogs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, JobResult]:
    """Every sample generated once with the default limits (one set of services for all)."""
    settings = make_settings(tmp_path_factory.mktemp("quality"), workflow={"limits": DEFAULT_LIMITS})

    async def run_all() -> dict[str, JobResult]:
        out = {}
        async with build_services(settings, {}, with_relay=False, backoff_base=0.001) as services:
            for name in ALL_SAMPLES:
                job_id = await services.jobs.submit(JobRequest(vision=_data(name)))
                job = await services.jobs.wait(job_id)
                out[name] = JobResult(
                    job, await services.store.items(job_id), await services.store.calls(job_id)
                )
        return out

    return asyncio.run(run_all())


@pytest.mark.parametrize("name", ALL_SAMPLES)
def test_every_sample_meets_every_quality_target(name: str, backlogs: dict[str, JobResult]) -> None:
    """The job's stored quality model has every metric on target, for every sample vision."""
    result = backlogs[name]
    assert result.job.status == "completed"
    card = result.job.metadata["quality"]
    short = {m["key"]: (m["value"], m["offenders"][:2]) for m in card["metrics"] if not m["ok"]}
    assert card["ok"] and not short, short
    assert len(result.of("story")) >= 4


def test_the_long_free_text_sample_reads_like_a_backlog(backlogs: dict[str, JobResult]) -> None:
    """On the greenhouse vision, personas are its named roles, no title is a fragment from the first
    paragraph, and no two stories share a criterion, a task or a test case."""
    result = backlogs["greenhouse-yield.md"]
    roles = {re.match(r"As an? (.+?), I want", s.body["user_story"]).group(1) for s in result.of("story")}  # type: ignore[union-attr]
    assert roles <= {"grower", "crop scout", "scout", "sales planner", "head grower", "buyer"}, roles
    titles = [i.title for i in result.items if i.kind in ("epic", "feature", "story")]
    assert not [t for t in titles if "hectares" in t or "(" in t], titles
    criteria = [c for s in result.of("story") for c in s.body["acceptance_criteria"]]
    assert len(set(criteria)) == len(criteria)
    for kind in ("task", "test_case"):
        names = [i.title for i in result.of(kind)]
        assert len(set(names)) == len(names), kind
    points = [s.body["story_points"] for s in result.of("story")]
    assert len(set(points)) >= 3


async def test_a_three_by_four_by_five_job_generates_in_under_a_second(tmp_path: Path) -> None:
    """With the services up, the default offline provider generates 3 epics × 4 features × 5 stories
    (with tasks and test cases) of the largest sample in under one second."""
    limits = {**DEFAULT_LIMITS, "max_stories_per_feature": 5}
    settings = make_settings(tmp_path, workflow={"limits": limits})
    async with build_services(settings, {}, with_relay=False, backoff_base=0.001) as services:
        warm = await services.jobs.submit(JobRequest(vision=_data("tiny.txt")))
        await services.jobs.wait(warm)  # the process pool's workers are up
        started = time.perf_counter()
        job_id = await services.jobs.submit(JobRequest(vision=_data("campus-events.yaml")))
        job = await services.jobs.wait(job_id)
        elapsed = time.perf_counter() - started
        stories = sum(1 for i in await services.store.items(job_id) if i.kind == "story")
    assert job.status == "completed" and stories >= 30
    assert elapsed < 1.0, f"{elapsed:.2f} s for {stories} stories"


async def test_any_sample_twice_gives_the_same_backlog(settings_factory: Factory) -> None:
    """The free-text greenhouse sample generates the same titles and bodies on a second run."""
    settings = settings_factory(workflow={"limits": {**DEFAULT_LIMITS, "max_epics": 2}})
    first = await run_job(settings, _data("greenhouse-yield.md"))
    second = await run_job(settings, _data("greenhouse-yield.md"))
    assert sorted((i.kind, i.title, str(i.body)) for i in first.items) == sorted(
        (i.kind, i.title, str(i.body)) for i in second.items
    )
