"""The offline provider through the real runner: deterministic, specific to the vision, complete (GWT
criteria, test steps), and tracing every sentence of the sample visions."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from service.settings import Settings
from stages.vision import Vision, parse_bytes
from tests.conftest import SAMPLES, JobResult, run_job

Factory = Callable[..., Settings]
LIMITS = {
    "max_epics": 3,
    "max_features_per_epic": 3,
    "max_stories_per_feature": 3,
    "max_tasks_per_story": 3,
    "max_test_cases_per_story": 2,
}
GENERIC = re.compile(r"\bAs an? user\b|\bI want the feature\b|\bthe feature\b", re.I)


def sample(name: str) -> tuple[Vision, dict[str, Any]]:
    vision = parse_bytes((SAMPLES / name).read_bytes(), name)
    return vision, vision.as_mapping()


def content(result: JobResult) -> list[tuple[tuple[str, ...], str, dict[str, Any]]]:
    """Each item as (its path of titles from the epic down, kind, body): no job-specific ids, and
    independent of commit order (siblings of different parents commit in any order)."""
    by_id = {i.id: i for i in result.items}

    def path(item_id: str | None) -> tuple[str, ...]:
        item = by_id.get(item_id or "")
        return () if item is None else (*path(item.parent_id), f"{item.position}:{item.title}")

    return sorted((path(i.id), i.kind, i.body) for i in result.items)


async def test_same_vision_gives_the_same_backlog(settings_factory: Factory, tmp_path: Path) -> None:
    """Two runs of the same vision give identical titles and bodies, item for item."""
    _, data = sample("clinic-scheduling.yaml")
    first = await run_job(settings_factory(workflow={"limits": LIMITS}), data)
    second = await run_job(settings_factory(workflow={"limits": LIMITS}), data)
    assert first.job.id != second.job.id
    assert first.job.status == second.job.status == "completed"
    assert content(first) == content(second)
    assert len(first.of("story")) >= 9


@pytest.fixture(scope="module")
def clinic_backlog(tmp_path_factory: pytest.TempPathFactory) -> JobResult:
    import asyncio

    from tests.conftest import make_settings

    _, data = sample("clinic-scheduling.yaml")
    settings = make_settings(tmp_path_factory.mktemp("offline"), workflow={"limits": LIMITS})
    return asyncio.run(run_job(settings, data))


def test_stories_are_specific_to_the_vision(clinic_backlog: JobResult) -> None:
    """Every story's role is one of the vision's personas and its goal is about its feature; none is
    generic filler like 'As a user, I want the feature'."""
    vision, _ = sample("clinic-scheduling.yaml")
    personas = [u.lower().split()[0].rstrip("s") for u in vision.target_users]  # "patient", "physiotherapist"
    features = {f.id: f for f in clinic_backlog.of("feature")}
    for story in clinic_backlog.of("story"):
        text = story.body["user_story"]
        assert not GENERIC.search(text), text
        role = re.match(r"As an? (.+?), I want", text)
        assert role is not None, text
        assert any(p in role.group(1).lower() for p in personas), text
        feature_words = {
            w.lower() for w in re.findall(r"[A-Za-z]{5,}", features[story.parent_id or ""].title)
        }
        assert feature_words & {w.lower() for w in re.findall(r"[A-Za-z]{5,}", text)}, (text, feature_words)


def test_every_story_has_three_gwt_criteria_and_every_case_two_steps(clinic_backlog: JobResult) -> None:
    """Every story has at least 3 Given/When/Then criteria; every test case at least 2 complete steps."""
    for story in clinic_backlog.of("story"):
        criteria = story.body["acceptance_criteria"]
        assert len(criteria) >= 3
        assert all(re.match(r"Given .+ When .+ Then .+", c, re.I | re.S) for c in criteria), criteria
    cases = clinic_backlog.of("test_case")
    assert len(cases) == 2 * len(clinic_backlog.of("story"))
    for case in cases:
        assert len(case.body["steps"]) >= 2
        assert all(s["action"].strip() and s["expected"].strip() for s in case.body["steps"])


def test_every_item_cites_real_sentences(clinic_backlog: JobResult) -> None:
    """Every generated item cites at least one sentence id that exists in the vision."""
    vision, _ = sample("clinic-scheduling.yaml")
    known = {s.id for s in vision.sentences}
    generated = [
        i for i in clinic_backlog.items if i.kind in ("epic", "feature", "story", "task", "test_case")
    ]
    assert all(i.body["sources"] and set(i.body["sources"]) <= known for i in generated)


@pytest.mark.parametrize("name", sorted(p.name for p in SAMPLES.iterdir()))
async def test_traceability_report_covers_each_sample(name: str, settings_factory: Factory) -> None:
    """For every sample vision the job's traceability report counts all its sentences and no story
    leaves one uncovered."""
    vision, data = sample(name)
    result = await run_job(
        settings_factory(
            workflow={"limits": {"max_epics": 3, "max_features_per_epic": 4, "max_stories_per_feature": 4}}
        ),
        data,
    )
    assert result.job.status == "completed"
    report = result.job.metadata["traceability"]
    assert report["sentences"] == len(vision.sentences)
    assert report["uncovered"] == [] and report["covered"] == len(vision.sentences)
    cited = {sid for s in result.of("story") for sid in s.body["sources"]}
    assert cited == {s.id for s in vision.sentences}
