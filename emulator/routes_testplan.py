"""Test plans, suites and suite membership (E11). A plan comes with its root suite; a suite needs a parent
suite of the same plan; requirement suites need an existing requirement and link added cases to it."""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from emulator import links
from emulator.errors import AdoError
from emulator.routing import (
    RouteMatch,
    Router,
    collection,
    json_response,
    org_url,
    project_of,
    read_json,
    state_of,
)
from emulator.serialize import item_url
from emulator.state import EmulatorState, Project, TestPlan, TestSuite

SUITE_TYPES = ("none", "dynamicTestSuite", "staticTestSuite", "requirementTestSuite")


def _require_licence(state: EmulatorState) -> None:
    """Creating plans and suites needs Basic + Test Plans; reading them does not (docs §5.1)."""
    if not state.config.test_plans_access:
        raise AdoError(
            403,
            "UnauthorizedRequestException",
            "TF400409: You do not have licensing rights to access this feature: Test Plans.",
        )


def _plan_json(request: web.Request, project: Project, plan: TestPlan) -> dict[str, Any]:
    url = f"{org_url(request)}/{project.id}/_apis/testplan/Plans/{plan.id}"
    return {
        "id": plan.id,
        "name": plan.name,
        "areaPath": plan.area_path,
        "iteration": plan.iteration,
        "description": plan.description,
        "state": plan.state,
        "revision": plan.revision,
        "project": {"id": project.id, "name": project.name},
        "rootSuite": {"id": plan.root_suite_id, "name": plan.name},
        "_links": {"self": {"href": url}},
        "url": url,
    }


def _suite_json(request: web.Request, project: Project, plan: TestPlan, suite: TestSuite) -> dict[str, Any]:
    url = f"{org_url(request)}/{project.id}/_apis/testplan/Plans/{plan.id}/Suites/{suite.id}"
    body: dict[str, Any] = {
        "id": suite.id,
        "name": suite.name,
        "suiteType": suite.suite_type,
        "revision": suite.revision,
        "plan": {"id": plan.id, "name": plan.name},
        "project": {"id": project.id, "name": project.name},
        "hasChildren": any(s.parent_id == suite.id for s in state_of(request).suites.values()),
        "_links": {"self": {"href": url}},
        "url": url,
    }
    if suite.parent_id is not None:
        body["parentSuite"] = {"id": suite.parent_id}
    if suite.requirement_id is not None:
        body["requirementId"] = suite.requirement_id
    if suite.query_string is not None:
        body["queryString"] = suite.query_string
    return body


def _plan(state: EmulatorState, project: Project, plan_id: str) -> TestPlan:
    plan = state.plans.get(int(plan_id)) if plan_id.isdigit() else None
    if plan is None or plan.project != project.name:
        raise AdoError(404, "TestObjectNotFoundException", f"Test plan {plan_id} not found.")
    return plan


def _suite(state: EmulatorState, plan: TestPlan, suite_id: Any) -> TestSuite:
    suite = state.suites.get(int(suite_id)) if str(suite_id).isdigit() else None
    if suite is None or suite.plan_id != plan.id:
        raise AdoError(
            404, "TestObjectNotFoundException", f"Test suite {suite_id} not found in plan {plan.id}."
        )
    return suite


def _path_or_default(state: EmulatorState, project: Project, structure: str, value: Any) -> str:
    path = str(value) if value else project.name
    if not state.tree_path_exists(project, structure, path):
        raise AdoError(
            400, "InvalidPropertyException", f"TF400497: The {structure} path {path} is not valid."
        )
    return path


async def create_plan(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    project = project_of(request, match.params)
    state = state_of(request)
    _require_licence(state)
    body = await read_json(request)
    if not isinstance(body, dict) or not str(body.get("name") or "").strip():
        raise AdoError(400, "InvalidPropertyException", "The test plan name is required.")
    area = _path_or_default(state, project, "area", body.get("areaPath"))
    iteration = _path_or_default(state, project, "iteration", body.get("iteration"))
    plan_id, root_id = state.allocate_id(), state.allocate_id()
    plan = TestPlan(
        plan_id, str(body["name"]), project.name, root_id, area, iteration, str(body.get("description") or "")
    )
    state.plans[plan_id] = plan
    state.suites[root_id] = TestSuite(root_id, plan_id, plan.name, "staticTestSuite", None)
    return json_response(_plan_json(request, project, plan))


async def list_plans(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    project = project_of(request, match.params)
    plans = [p for p in state_of(request).plans.values() if p.project == project.name]
    return collection([_plan_json(request, project, p) for p in plans])


async def get_plan(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    project = project_of(request, match.params)
    return json_response(
        _plan_json(request, project, _plan(state_of(request), project, match.params["plan"]))
    )


def _suite_type(raw: Any) -> str:
    if isinstance(raw, int) and 0 <= raw < len(SUITE_TYPES):
        return SUITE_TYPES[raw]
    by_name = {t.casefold(): t for t in SUITE_TYPES}
    found = by_name.get(str(raw).casefold())
    if found is None or found == "none":
        raise AdoError(400, "InvalidPropertyException", f"Invalid suiteType {raw}.")
    return found


def _requirement(state: EmulatorState, raw: Any) -> tuple[int, str]:
    item = state.items.get(int(raw)) if str(raw).isdigit() else None
    if item is None or item.type_name == "Test Case":
        raise AdoError(
            400, "InvalidPropertyException", f"Requirement {raw} does not exist or is not a requirement."
        )
    return item.id, f"{item.id} : {item.fields.get('System.Title', '')}"


async def create_suite(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    project = project_of(request, match.params)
    state = state_of(request)
    plan = _plan(state, project, match.params["plan"])
    _require_licence(state)
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("parentSuite"), dict):
        raise AdoError(
            400, "InvalidPropertyException", "parentSuite is required (normally the plan's rootSuite)."
        )
    parent = _suite(state, plan, body["parentSuite"].get("id"))
    if parent.suite_type != "staticTestSuite":
        raise AdoError(400, "InvalidPropertyException", "Only static suites can contain suites.")
    suite_type = _suite_type(body.get("suiteType", "staticTestSuite"))
    requirement_id, name = None, str(body.get("name") or "").strip()
    if suite_type == "requirementTestSuite":
        requirement_id, name = _requirement(state, body.get("requirementId"))
    if not name:
        raise AdoError(400, "InvalidPropertyException", "The test suite name is required.")
    query = str(body.get("queryString") or "") if suite_type == "dynamicTestSuite" else None
    if state.faults.suite_conflicts:
        await _save_under(state, parent)
    suite = TestSuite(state.allocate_id(), plan.id, name, suite_type, parent.id, requirement_id, query)
    state.suites[suite.id] = suite
    parent.revision += 1
    return json_response(_suite_json(request, project, plan, suite))


async def _save_under(state: EmulatorState, parent: TestSuite) -> None:
    """A suite save updates its parent suite; a second save under the same parent meanwhile loses
    the revision race with TF26071 (what parallel suite creation under one root suite gets)."""
    if parent.id in state.saving_suites:
        state.faults_injected["suite_conflict"] += 1
        raise AdoError(
            409,
            "WorkItemRevisionMismatchException",
            f"TF26071: This work item has been changed by someone else since you opened it. "
            f"You will need to refresh it and discard your changes. (suite {parent.id})",
        )
    state.saving_suites.add(parent.id)
    try:
        await asyncio.sleep(state.faults.suite_save_seconds)
    finally:
        state.saving_suites.discard(parent.id)


async def list_suites(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    project = project_of(request, match.params)
    state = state_of(request)
    plan = _plan(state, project, match.params["plan"])
    suites = [s for s in state.suites.values() if s.plan_id == plan.id]
    return collection([_suite_json(request, project, plan, s) for s in suites])


async def get_suite(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    project = project_of(request, match.params)
    state = state_of(request)
    plan = _plan(state, project, match.params["plan"])
    return json_response(_suite_json(request, project, plan, _suite(state, plan, match.params["suite"])))


def _add_cases(state: EmulatorState, suite: TestSuite, ids: list[int]) -> None:
    """Validate all ids first so a bad id adds nothing; requirement suites gain the Tested By link."""
    if suite.suite_type == "dynamicTestSuite":
        raise AdoError(400, "InvalidPropertyException", "Test cases cannot be added to a query-based suite.")
    for case_id in ids:
        item = state.items.get(case_id)
        if item is None or item.type_name != "Test Case":
            raise AdoError(400, "InvalidPropertyException", f"Work item {case_id} is not a Test Case.")
    for case_id in ids:
        if case_id not in suite.test_case_ids:
            suite.test_case_ids.append(case_id)
        if suite.requirement_id is not None:
            links.ensure_link(state, state.items[suite.requirement_id], links.TESTED_BY, case_id)


async def add_cases_new(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    project = project_of(request, match.params)
    state = state_of(request)
    plan = _plan(state, project, match.params["plan"])
    suite = _suite(state, plan, match.params["suite"])
    body = await read_json(request)
    if not isinstance(body, list):
        raise AdoError(400, "InvalidPropertyException", 'Body must be [{"workItem": {"id": n}}, ...].')
    try:
        ids = [int(entry["workItem"]["id"]) for entry in body]
    except (KeyError, TypeError, ValueError) as exc:
        raise AdoError(400, "InvalidPropertyException", 'Each entry needs {"workItem": {"id": n}}.') from exc
    _add_cases(state, suite, ids)
    return collection([_case_json(request, state, plan, suite, i) for i in ids])


def _case_json(
    request: web.Request, state: EmulatorState, plan: TestPlan, suite: TestSuite, case_id: int
) -> dict[str, Any]:
    name = state.items[case_id].fields.get("System.Title", "")
    return {
        "workItem": {"id": case_id, "name": name, "workItemFields": []},
        "pointAssignments": [{"configurationId": 1, "configurationName": "Windows 10", "id": case_id}],
        "testPlan": {"id": plan.id, "name": plan.name},
        "testSuite": {"id": suite.id, "name": suite.name},
        "order": suite.test_case_ids.index(case_id) + 1,
    }


async def list_cases(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    project = project_of(request, match.params)
    state = state_of(request)
    plan = _plan(state, project, match.params["plan"])
    suite = _suite(state, plan, match.params["suite"])
    return collection([_case_json(request, state, plan, suite, i) for i in suite.test_case_ids])


async def add_cases_old(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    project = project_of(request, match.params)
    state = state_of(request)
    plan = _plan(state, project, match.params["plan"])
    suite = _suite(state, plan, match.params["suite"])
    try:
        ids = [int(part) for part in match.params["ids"].split(",") if part.strip()]
    except ValueError as exc:
        raise AdoError(
            400, "InvalidPropertyException", f"Invalid test case ids {match.params['ids']}."
        ) from exc
    _add_cases(state, suite, ids)
    base = org_url(request)
    values = [
        {"testCase": {"id": str(i), "url": item_url(state, base, i)}, "pointAssignments": []} for i in ids
    ]
    return collection(values)


def add_routes(router: Router) -> None:
    base = "/{org}/{project}/_apis/testplan/plans"
    router.add("POST", base, create_plan, "testplan")
    router.add("GET", base, list_plans, "testplan")
    router.add("GET", base + "/{plan}", get_plan, "testplan")
    router.add("POST", base + "/{plan}/suites", create_suite, "testplan")
    router.add("GET", base + "/{plan}/suites", list_suites, "testplan")
    router.add("GET", base + "/{plan}/suites/{suite}", get_suite, "testplan")
    router.add("POST", base + "/{plan}/suites/{suite}/testcase", add_cases_new, "testplan")
    router.add("GET", base + "/{plan}/suites/{suite}/testcase", list_cases, "testplan")
    old = "/{org}/{project}/_apis/test/plans/{plan}/suites/{suite}/testcases"
    router.add("POST", old + "/{ids}", add_cases_old, "testplan")
    router.add("GET", old, list_cases_old, "testplan")


async def list_cases_old(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    """The older test client's `get_test_cases`: the suite's cases as {testCase, pointAssignments}."""
    project = project_of(request, match.params)
    state = state_of(request)
    plan = _plan(state, project, match.params["plan"])
    suite = _suite(state, plan, match.params["suite"])
    base = org_url(request)
    values = [
        {"testCase": {"id": str(i), "url": item_url(state, base, i)}, "pointAssignments": []}
        for i in suite.test_case_ids
    ]
    return collection(values)
