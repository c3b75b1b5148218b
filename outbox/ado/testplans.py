"""Test plans, requirement-based suites and adding test cases to suites (§5).

Suites of one plan are created one at a time: the service answers TF26071 (409) when suites are
created in parallel under one root suite. Creating a plan without the Basic + Test Plans access level
is refused with an authorization error that is not the PAT's fault; it is reported as such.

Plans carry no tags, so a plan is found again by its name plus the item key written as the last line
of its description. Requirement suites are unique per (plan, requirement) and found by that pair.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

from yarl import URL

from outbox.ado import richtext
from outbox.ado.discovery import values
from outbox.ado.errors import AdoAuthError, AdoError, AdoForbidden, AdoPermanent
from outbox.ado.http import AdoHttp
from outbox.ado.types import ProcessProfile, Uploaded, UploadItem
from outbox.ado.urls import AdoUrls

_CONTINUATION = "x-ms-continuationtoken"


def key_line(key: str) -> str:
    return f"backlogd-key: {key}"


class TestPlans:
    """Plan/suite creation and lookup through the testplan API."""

    __test__ = False  # not a pytest class

    def __init__(self, http: AdoHttp, urls: AdoUrls) -> None:
        self._http = http
        self._urls = urls
        self._suite_locks: dict[int, asyncio.Lock] = {}

    async def _pages(self, url_for: Callable[[str | None], URL]) -> AsyncIterator[dict[str, Any]]:
        token: str | None = None
        while True:
            reply = await self._http.call("GET", url_for(token))
            for value in values(reply.data):
                yield value
            token = reply.headers.get(_CONTINUATION)
            if not token:
                return

    # -- plans -------------------------------------------------------------------------------------

    def _plan_uploaded(self, plan: dict[str, Any]) -> Uploaded:
        plan_id = int(plan["id"])
        root = int((plan.get("rootSuite") or {}).get("id", 0))
        return Uploaded(
            plan_id, self._urls.plan_browser(plan_id), int(plan.get("revision", 0)), {"root_suite_id": root}
        )

    async def find_plan(self, item: UploadItem) -> Uploaded | None:
        name = richtext.title(item.title)
        async for plan in self._pages(self._urls.plans):
            if plan.get("name") != name:
                continue
            if "description" not in plan or "rootSuite" not in plan:
                plan = (await self._http.call("GET", self._urls.plan(int(plan["id"])))).data
            if key_line(item.key) in str(plan.get("description") or ""):
                return self._plan_uploaded(plan)
        return None

    async def get_plan(self, plan_id: int) -> Uploaded:
        return self._plan_uploaded((await self._http.call("GET", self._urls.plan(plan_id))).data)

    async def create_plan(self, item: UploadItem, profile: ProcessProfile) -> Uploaded:
        description = str(item.body.get("description") or "").strip()
        body = {
            "name": richtext.title(item.title),
            "areaPath": profile.area_path or profile.project_name,
            "iteration": profile.iteration_path or profile.project_name,
            "description": f"{description}\n\n{key_line(item.key)}".strip(),
        }
        try:
            reply = await self._http.call("POST", self._urls.plans(), body, write=True)
        except AdoAuthError as exc:
            raise test_plans_forbidden(exc) from None
        return self._plan_uploaded(reply.data)

    # -- suites ------------------------------------------------------------------------------------

    def _suite_uploaded(self, plan_id: int, suite: dict[str, Any]) -> Uploaded:
        suite_id = int(suite["id"])
        url = self._urls.plan_browser(plan_id, suite_id)
        return Uploaded(suite_id, url, int(suite.get("revision", 0)), {"plan_id": plan_id})

    async def find_suite(self, item: UploadItem) -> Uploaded | None:
        plan_id = _ref(item, "plan_id")
        async for suite in self._pages(lambda token: self._urls.suites(plan_id, token)):
            if (
                suite.get("suiteType") == "requirementTestSuite"
                and suite.get("requirementId") == item.parent_ado_id
            ):
                return self._suite_uploaded(plan_id, suite)
        return None

    async def create_suite(self, item: UploadItem) -> Uploaded:
        plan_id = _ref(item, "plan_id")
        if item.parent_ado_id is None:
            raise AdoPermanent(f"test suite {item.id} has no story id (requirementId)")
        body = {
            "suiteType": "requirementTestSuite",
            "name": richtext.title(item.title),
            "requirementId": item.parent_ado_id,
            "parentSuite": {"id": _ref(item, "root_suite_id")},
        }
        lock = self._suite_locks.setdefault(plan_id, asyncio.Lock())
        async with lock:
            try:
                reply = await self._http.call("POST", self._urls.suites(plan_id), body, write=True)
            except AdoAuthError as exc:
                raise test_plans_forbidden(exc) from None
        return self._suite_uploaded(plan_id, reply.data)

    async def add_case(self, plan_id: int, suite_id: int, case_id: int) -> None:
        body = [{"workItem": {"id": case_id}}]
        await self._http.call("POST", self._urls.suite_cases(plan_id, suite_id), body, write=True)


TEST_PLANS_ACCESS = (
    "the user of this PAT needs the Basic + Test Plans access level (or Visual Studio Enterprise) to "
    "create test plans and suites: ask an organization administrator to assign it, or switch "
    "workflow.include_qa off"
)


def test_plans_forbidden(exc: AdoError) -> AdoForbidden:
    return AdoForbidden(f"no access to Test Plans: {TEST_PLANS_ACCESS} (HTTP {exc.status})", exc.status)


def _ref(item: UploadItem, name: str) -> int:
    value = item.refs.get(name)
    if value is None:
        raise AdoPermanent(f"{item.kind} {item.id} is missing refs[{name!r}]")
    return value
