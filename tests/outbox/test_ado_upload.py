"""Uploading every kind of item to the emulator, for each process template, lands the right fields."""

from __future__ import annotations

import asyncio
import html
import re
import xml.etree.ElementTree as ET
from typing import Any

import pytest

from emulator.config import EmulatorConfig
from outbox.ado.errors import AdoNotFound, AdoPermanent
from tests.outbox.test_ado_support import (
    BODIES,
    PAT,
    PROJECT,
    Rig,
    ServerFactory,
    emulator_config,
    rig,
    upload_item,
)

SP = "Microsoft.VSTS.Scheduling.StoryPoints"
EFFORT = "Microsoft.VSTS.Scheduling.Effort"
SIZE = "Microsoft.VSTS.Scheduling.Size"
OE = "Microsoft.VSTS.Scheduling.OriginalEstimate"
RW = "Microsoft.VSTS.Scheduling.RemainingWork"
AC = "Microsoft.VSTS.Common.AcceptanceCriteria"
ACTIVITY = "Microsoft.VSTS.Common.Activity"
DISCIPLINE = "Microsoft.VSTS.Common.Discipline"

# process -> (story type, story size field, AC field?, task fields expected, task fields absent)
EXPECTED: dict[str, tuple[str, str, bool, dict[str, Any], tuple[str, ...]]] = {
    "Agile": ("User Story", SP, True, {OE: 6.0, RW: 6.0, ACTIVITY: "Development"}, ()),
    "Scrum": ("Product Backlog Item", EFFORT, True, {RW: 6.0, ACTIVITY: "Development"}, (OE,)),
    "CMMI": ("Requirement", SIZE, False, {OE: 6.0, RW: 6.0, DISCIPLINE: "Development"}, (ACTIVITY,)),
    "Basic": ("Issue", EFFORT, False, {RW: 6.0}, (OE, ACTIVITY)),
}


def _text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", fragment))


async def _hierarchy(r: Rig) -> dict[str, int]:
    ids: dict[str, int] = {}
    ids["epic"] = (await r.client.upload(upload_item("epic"), reconcile=False)).ado_id
    ids["feature"] = (
        await r.client.upload(upload_item("feature", parent=ids["epic"]), reconcile=False)
    ).ado_id
    ids["story"] = (
        await r.client.upload(upload_item("story", parent=ids["feature"]), reconcile=False)
    ).ado_id
    ids["task"] = (await r.client.upload(upload_item("task", parent=ids["story"]), reconcile=False)).ado_id
    return ids


@pytest.mark.parametrize("process", ["Agile", "Scrum", "CMMI", "Basic"])
async def test_backlog_kinds_land_with_their_fields(aiohttp_server: ServerFactory, process: str) -> None:
    """Epic → feature → story → task are created with parent links and the process's own fields."""
    story_type, size_field, has_ac, task_fields, task_absent = EXPECTED[process]
    async with rig(aiohttp_server, emulator_config(process)) as r:
        profile = await r.client.prepare()
        assert profile.process == process
        ids = await _hierarchy(r)
        items = {k: await r.work_item(ids[k]) for k in ("epic", "feature", "story", "task")}
        epic, feature, story, task = [items[k]["fields"] for k in ("epic", "feature", "story", "task")]
    assert epic["System.Title"] == BODIES["epic"]["title"]
    assert "Second line" in _text(epic["System.Description"])
    assert 'see "slots"' in _text(epic["System.Description"])
    assert epic["Microsoft.VSTS.Common.Priority"] == 1
    if process == "Basic":  # Epic → Issue → Task: the feature's Epic is related to its epic, not nested
        assert "System.Parent" not in feature and feature["System.WorkItemType"] == "Epic"
        rels = [(x["rel"], int(x["url"].rsplit("/", 1)[1])) for x in items["feature"]["relations"]]
        assert ("System.LinkTypes.Related", ids["epic"]) in rels
    else:
        assert feature["System.Parent"] == ids["epic"]
    assert story["System.WorkItemType"] == story_type
    assert story["System.Parent"] == ids["feature"]
    assert story[size_field] == 5
    assert set(story["System.Tags"].split("; ")) == {"bk-story", "bi-run1"}
    criteria = story.get(AC, "") if has_ac else story["System.Description"]
    assert "Then I see <an error>" in _text(criteria)
    assert (AC in story) is has_ac
    assert task["System.Parent"] == ids["story"]
    assert {k: task.get(k) for k in task_fields} == task_fields
    assert not any(k in task for k in task_absent)


@pytest.mark.parametrize("process", ["Agile", "Scrum", "CMMI"])
async def test_qa_items_land_in_plan_suite_and_case(aiohttp_server: ServerFactory, process: str) -> None:
    """A plan with its root suite, a requirement suite for the story, and a case that Tests the story."""
    async with rig(aiohttp_server, emulator_config(process)) as r:
        ids = await _hierarchy(r)
        plan = await r.client.upload(upload_item("test_plan", parent=ids["feature"]), reconcile=False)
        root = plan.extra["root_suite_id"]
        suite_item = upload_item(
            "test_suite", parent=ids["story"], refs={"plan_id": plan.ado_id, "root_suite_id": root}
        )
        suite = await r.client.upload(suite_item, reconcile=False)
        case_item = upload_item(
            "test_case", parent=ids["story"], refs={"plan_id": plan.ado_id, "suite_id": suite.ado_id}
        )
        case = await r.client.upload(case_item, reconcile=False)
        case_data = await r.work_item(case.ado_id)
        suites = await r.api("GET", f"{PROJECT}/_apis/testplan/Plans/{plan.ado_id}/suites")
        in_suite = await r.api(
            "GET", f"{PROJECT}/_apis/testplan/Plans/{plan.ado_id}/Suites/{suite.ado_id}/TestCase"
        )
    by_id = {s["id"]: s for s in suites["value"]}
    assert by_id[suite.ado_id]["suiteType"] == "requirementTestSuite"
    assert by_id[suite.ado_id]["requirementId"] == ids["story"]
    assert by_id[suite.ado_id]["parentSuite"]["id"] == root
    assert [c["workItem"]["id"] for c in in_suite["value"]] == [case.ado_id]
    fields = case_data["fields"]
    assert fields["System.WorkItemType"] == "Test Case"
    assert "System.Parent" not in fields
    rels = [(rel["rel"], int(rel["url"].rsplit("/", 1)[1])) for rel in case_data.get("relations", [])]
    assert rels == [("Microsoft.VSTS.Common.TestedBy-Reverse", ids["story"])]
    steps = ET.fromstring(fields["Microsoft.VSTS.TCM.Steps"])
    texts = [_text(p.text or "").strip() for p in steps.iter("parameterizedString")]
    assert texts[:2] == ["Open <booking> page", 'Slots are "listed"']
    assert "A patient account & a free slot" in _text(fields["System.Description"])


async def test_basic_has_no_test_case_type(aiohttp_server: ServerFactory) -> None:
    """On Basic a test case fails permanently with a clear message and nothing is created."""
    async with rig(aiohttp_server, emulator_config("Basic")) as r:
        with pytest.raises(AdoPermanent, match="not available for process Basic"):
            await r.client.upload(upload_item("test_case", parent=1), reconcile=False)
        with pytest.raises(AdoPermanent, match="not available for process Basic"):
            await r.client.upload(upload_item("test_plan"), reconcile=False)
        assert await r.ids_tagged("bk-test_case") == []


async def test_area_and_iteration_paths_are_created_when_missing(aiohttp_server: ServerFactory) -> None:
    """Missing area and iteration nodes are created in prepare and then used by every created item."""
    async with rig(
        aiohttp_server, area_path=f"{PROJECT}\\Team A\\Web", iteration_path="Release 1/Sprint 9"
    ) as r:
        profile = await r.client.prepare()
        epic = await r.client.upload(upload_item("epic"), reconcile=False)
        fields = (await r.work_item(epic.ado_id))["fields"]
        area = await r.api("GET", f"{PROJECT}/_apis/wit/classificationnodes/Areas/Team%20A/Web")
        iteration = await r.api(
            "GET", f"{PROJECT}/_apis/wit/classificationnodes/Iterations/Release%201/Sprint%209"
        )
    assert profile.area_path == f"{PROJECT}\\Team A\\Web"
    assert fields["System.AreaPath"] == f"{PROJECT}\\Team A\\Web"
    assert fields["System.IterationPath"] == f"{PROJECT}\\Release 1\\Sprint 9"
    assert area["name"] == "Web"
    assert iteration["name"] == "Sprint 9"


async def test_existing_nodes_are_reused(aiohttp_server: ServerFactory) -> None:
    """An iteration that already exists (Sprint 1) is used as is."""
    async with rig(aiohttp_server, iteration_path="Sprint 1") as r:
        profile = await r.client.prepare()
    assert profile.iteration_path == f"{PROJECT}\\Sprint 1"


async def test_unknown_project_is_not_found(aiohttp_server: ServerFactory) -> None:
    """prepare() on a project that does not exist names it in a permanent error."""
    async with rig(aiohttp_server, project="Nope") as r:
        with pytest.raises(AdoNotFound, match="project Nope does not exist"):
            await r.client.prepare()


async def test_find_existing_uses_the_key_tag(aiohttp_server: ServerFactory) -> None:
    """find_existing returns the work item carrying the key tag and None for an unknown key."""
    async with rig(aiohttp_server) as r:
        epic = await r.client.upload(upload_item("epic", key="bk-abc"), reconcile=False)
        found = await r.client.find_existing(upload_item("epic", key="bk-abc"))
        missing = await r.client.find_existing(upload_item("epic", key="bk-ab"))
    assert found is not None and found.ado_id == epic.ado_id
    assert found.url == r.client.work_item_url(epic.ado_id)
    assert missing is None


async def test_work_item_url_is_the_browser_url(aiohttp_server: ServerFactory) -> None:
    """The URL recorded for an item is {org}/{project}/_workitems/edit/{id}."""
    async with rig(aiohttp_server) as r:
        epic = await r.client.upload(upload_item("epic"), reconcile=False)
    assert epic.url == f"{r.org_url}/{PROJECT}/_workitems/edit/{epic.ado_id}"


async def test_names_with_spaces_are_percent_encoded(aiohttp_server: ServerFactory) -> None:
    """A project and a type name with spaces (Product Backlog Item) reach the service as %20, not '+'."""
    config = EmulatorConfig(projects=(("Clinic Team", "Scrum"),), pats=frozenset({PAT}))
    async with rig(aiohttp_server, config, project="Clinic Team") as r:
        epic = await r.client.upload(upload_item("epic"), reconcile=False)
        feature = await r.client.upload(upload_item("feature", parent=epic.ado_id), reconcile=False)
        story = await r.client.upload(upload_item("story", parent=feature.ado_id), reconcile=False)
        state = await r.state()
    types = {i["id"]: i["type"] for i in state["work_items"]}
    assert types[story.ado_id] == "Product Backlog Item"
    assert story.url.endswith(f"/Clinic%20Team/_workitems/edit/{story.ado_id}")


async def test_prepare_is_cached_after_the_first_success(aiohttp_server: ServerFactory) -> None:
    """Concurrent and repeated prepare() calls discover the project only once."""
    async with rig(aiohttp_server) as r:
        first = await asyncio.gather(r.client.prepare(), r.client.prepare())
        before = (await r.state())["requests_total"]
        again = await r.client.prepare()
        after = (await r.state())["requests_total"]
    assert first[0] is first[1] is again
    assert after == before
