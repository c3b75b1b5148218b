"""Test plans, suites and test case membership, and classification nodes, as the service behaves."""

from __future__ import annotations

from typing import Any

from tests.emulator.conftest import Ado

PLANS = "/backlogd/Backlogd/_apis/testplan/plans?api-version=7.1"
TESTS = "Microsoft.VSTS.Common.TestedBy-Forward"


async def _plan(emu: Ado) -> dict[str, Any]:
    reply = await emu.request("POST", PLANS, {"name": "Release 1", "iteration": "Backlogd\\Sprint 1"})
    assert reply.status == 200
    return dict(reply.json)


async def _suite(emu: Ado, plan: int, body: dict[str, Any]) -> Any:
    return await emu.request(
        "POST", f"/backlogd/Backlogd/_apis/testplan/Plans/{plan}/suites?api-version=7.1", body
    )


async def test_plan_creates_root_suite_and_lists(emu: Ado) -> None:
    """Creating a plan answers 200 with a rootSuite; GET plans lists it in {count,value}."""
    plan = await _plan(emu)
    assert plan["rootSuite"]["id"] != plan["id"] and plan["iteration"] == "Backlogd\\Sprint 1"
    listed = await emu.request("GET", "/backlogd/Backlogd/_apis/testplan/plans")
    assert listed.json["count"] == 1 and listed.json["value"][0]["id"] == plan["id"]
    state = await emu.state()
    assert state["suites"][0]["id"] == plan["rootSuite"]["id"]
    bad = await emu.request("POST", PLANS, {"name": "x", "iteration": "Backlogd\\Nope"})
    assert bad.status == 400


async def test_suites_need_parent_and_requirement(emu: Ado) -> None:
    """Suites need a parentSuite of the plan; requirement suites need an existing requirement id."""
    plan = await _plan(emu)
    root = plan["rootSuite"]["id"]
    story = (await emu.create("User Story", {"System.Title": "Story"})).json["id"]
    static = await _suite(
        emu, plan["id"], {"suiteType": "staticTestSuite", "name": "Login", "parentSuite": {"id": root}}
    )
    assert static.status == 200 and static.json["parentSuite"]["id"] == root
    req = await _suite(
        emu,
        plan["id"],
        {"suiteType": "requirementTestSuite", "requirementId": story, "parentSuite": {"id": root}},
    )
    assert (
        req.status == 200
        and req.json["requirementId"] == story
        and req.json["name"].startswith(f"{story} : ")
    )
    assert (await _suite(emu, plan["id"], {"suiteType": "staticTestSuite", "name": "orphan"})).status == 400
    missing = {"suiteType": "requirementTestSuite", "requirementId": 999, "parentSuite": {"id": root}}
    assert (await _suite(emu, plan["id"], missing)).status == 400
    numeric = await _suite(emu, plan["id"], {"suiteType": 2, "name": "Numeric", "parentSuite": {"id": root}})
    assert numeric.json["suiteType"] == "staticTestSuite"
    listed = await emu.request("GET", f"/backlogd/Backlogd/_apis/testplan/Plans/{plan['id']}/suites")
    assert listed.json["count"] == 4


async def test_add_cases_new_api_links_requirement(emu: Ado) -> None:
    """Adding a Test Case to a requirement suite records it and creates the Tested By link once."""
    plan = await _plan(emu)
    story = (await emu.create("User Story", {"System.Title": "Story"})).json["id"]
    case = (await emu.create("Test Case", {"System.Title": "Case"})).json["id"]
    suite = (
        await _suite(
            emu,
            plan["id"],
            {
                "suiteType": "requirementTestSuite",
                "requirementId": story,
                "parentSuite": {"id": plan["rootSuite"]["id"]},
            },
        )
    ).json["id"]
    url = f"/backlogd/Backlogd/_apis/testplan/Plans/{plan['id']}/Suites/{suite}/TestCase?api-version=7.1"
    for _ in range(2):
        reply = await emu.request("POST", url, [{"workItem": {"id": case}}])
        assert reply.status == 200 and reply.json["value"][0]["workItem"]["id"] == case
    state = await emu.state()
    stored = next(s for s in state["suites"] if s["id"] == suite)
    assert stored["test_case_ids"] == [case]
    story_rels = next(i for i in state["work_items"] if i["id"] == story)["relations"]
    assert [(r["rel"], r["target"]) for r in story_rels] == [(TESTS, case)]


async def test_add_cases_old_api_and_non_test_case_rejected(emu: Ado) -> None:
    """The old `test/.../testcases/{ids}` API adds cases; a non-Test-Case id is 400 and adds nothing."""
    plan = await _plan(emu)
    root = plan["rootSuite"]["id"]
    case = (await emu.create("Test Case", {"System.Title": "Case"})).json["id"]
    story = (await emu.create("User Story", {"System.Title": "Story"})).json["id"]
    base = f"/backlogd/Backlogd/_apis/test/Plans/{plan['id']}/suites/{root}/testcases"
    bad = await emu.request("POST", f"{base}/{case},{story}?api-version=7.1")
    assert bad.status == 400
    ok = await emu.request("POST", f"{base}/{case}?api-version=7.1")
    assert ok.status == 200 and ok.json["value"][0]["testCase"]["id"] == str(case)
    assert next(s for s in (await emu.state())["suites"] if s["id"] == root)["test_case_ids"] == [case]


async def test_classification_nodes_create_201_duplicate_409_and_paths(emu: Ado) -> None:
    """Node create is 201 + Location; a duplicate sibling is 409 VS402371; the new path is valid at once."""
    url = "/backlogd/Backlogd/_apis/wit/classificationnodes/Iterations?api-version=7.1"
    body = {
        "name": "Release 1",
        "attributes": {"startDate": "2026-02-02T00:00:00", "finishDate": "2026-02-13"},
    }
    created = await emu.request("POST", url, body)
    assert created.status == 201 and created.headers["Location"] == created.json["url"]
    assert created.json["path"] == "\\Backlogd\\Iteration\\Release 1"
    assert created.json["attributes"]["startDate"] == "2026-02-02T00:00:00Z"
    duplicate = await emu.request("POST", url, {"name": "release 1"})
    assert duplicate.status == 409 and "VS402371" in duplicate.json["message"]
    nested = await emu.request(
        "POST",
        "/backlogd/Backlogd/_apis/wit/classificationnodes/iterations/Release%201?api-version=7.1",
        {"name": "S1"},
    )
    assert nested.status == 201 and nested.json["path"] == "\\Backlogd\\Iteration\\Release 1\\S1"
    item = await emu.create("Task", {"System.Title": "x", "System.IterationPath": "Backlogd\\Release 1\\S1"})
    assert item.status == 200
    area = await emu.request(
        "POST", "/backlogd/Backlogd/_apis/wit/classificationnodes/Areas?api-version=7.1", {"name": "Web"}
    )
    assert area.status == 201 and area.json["structureType"] == "area"


async def test_classification_nodes_get_depth_and_404(emu: Ado) -> None:
    """GET lists both roots with $depth children; an unknown node is 404."""
    roots = await emu.request("GET", "/backlogd/Backlogd/_apis/wit/classificationnodes?$depth=1")
    assert roots.json["count"] == 2
    iterations = roots.json["value"][1]
    assert [c["name"] for c in iterations["children"]] == ["Sprint 1", "Sprint 2", "Sprint 3"]
    one = await emu.request("GET", "/backlogd/Backlogd/_apis/wit/classificationnodes/Iterations/Sprint%201")
    assert one.status == 200 and one.json["name"] == "Sprint 1"
    missing = await emu.request("GET", "/backlogd/Backlogd/_apis/wit/classificationnodes/Iterations/Nope")
    assert missing.status == 404


async def test_classification_node_move_by_id(emu: Ado) -> None:
    """Posting an existing node's id moves it under the target instead of creating a node."""
    base = "/backlogd/Backlogd/_apis/wit/classificationnodes/Iterations"
    release = (await emu.request("POST", f"{base}?api-version=7.1", {"name": "R"})).json
    sprint = (await emu.request("GET", f"{base}/Sprint%202")).json
    moved = await emu.request("POST", f"{base}/R?api-version=7.1", {"id": sprint["id"]})
    assert moved.status == 201 and moved.json["path"] == "\\Backlogd\\Iteration\\R\\Sprint 2"
    assert (await emu.request("GET", f"{base}/Sprint%202")).status == 404
    assert release["hasChildren"] is False


async def test_team_iteration_assignment_by_identifier(emu: Ado) -> None:
    """A new sprint is assigned to a team by its node identifier; an unknown identifier is 400."""
    node = (
        await emu.request(
            "POST",
            "/backlogd/Backlogd/_apis/wit/classificationnodes/Iterations?api-version=7.1",
            {"name": "S9"},
        )
    ).json
    url = "/backlogd/Backlogd/Backlogd%20Team/_apis/work/teamsettings/iterations?api-version=7.1"
    reply = await emu.request("POST", url, {"id": node["identifier"]})
    assert reply.status == 200 and reply.json["path"] == "Backlogd\\S9"
    assert (await emu.request("POST", url, {"id": "00000000-0000-0000-0000-000000000000"})).status == 400
