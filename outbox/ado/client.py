"""The async Azure DevOps client: prepare the project, find an item by its key, upload it exactly once.

Every request goes through the rate gate; nothing is retried here. A create is sent once with all
fields and its link; after an ambiguous failure the caller calls ``upload(item, reconcile=True)``,
which looks the item up by its key tag before creating anything.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import aiohttp

from outbox.ado import mapping, owned, preflight
from outbox.ado.discovery import discover_profile, values
from outbox.ado.errors import (
    AdoAmbiguous,
    AdoConflict,
    AdoError,
    AdoNotFound,
    AdoPermanent,
    AdoRevisionConflict,
    AdoTransient,
)
from outbox.ado.gate import RateGate
from outbox.ado.http import AdoHttp
from outbox.ado.process import missing_type_error
from outbox.ado.testplans import TestPlans
from outbox.ado.types import AdoTarget, ProcessProfile, Uploaded, UploadItem
from outbox.ado.urls import AdoUrls
from vocab import ItemKind

_IDS_PER_GET = 200
_CLOSED_STATES = ("Removed", "Closed", "Done")  # Agile/Scrum have Removed; CMMI and test cases Closed
_NODE_LAG_CODES = ("TF401347", "TF400497")  # invalid tree path (work item, test plan)


class AdoClient:
    """One project of one organization, as one identity (one PAT) behind one rate gate."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        target: AdoTarget,
        gate: RateGate,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._target = target
        self._urls = AdoUrls(target.organization_url, target.project)
        self._http = AdoHttp(session, target.pat, gate, target.timeout_seconds, clock)
        self._plans = TestPlans(self._http, self._urls)
        self._profile: ProcessProfile | None = None
        self._lock = asyncio.Lock()
        self._clock = clock
        self._nodes_created_at: float | None = None
        self.discoveries = 0  # how many times the project was discovered (once per client)

    def __repr__(self) -> str:
        return f"AdoClient({self._urls.org!r}, {self._target.project!r})"

    def work_item_url(self, ado_id: int) -> str:
        return self._urls.browser(ado_id)

    async def prepare(self) -> ProcessProfile:
        """Discover the project's process and fields, create missing area/iteration nodes; cached."""
        if self._profile is None:
            async with self._lock:
                if self._profile is None:
                    with _shape_guard(AdoTransient, "prepare"):
                        self.discoveries += 1
                        found = await discover_profile(self._http, self._urls, self._target)
                    if found.created_nodes:
                        self._nodes_created_at = self._clock()
                    self._profile = found.profile
        return self._profile

    async def check(
        self, *, include_qa: bool, sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    ) -> preflight.CheckReport:
        """Pre-flight of this target (writes nothing); see ``outbox.ado.preflight``."""
        return await preflight.check(self._http, self._urls, self._target, include_qa=include_qa, sleep=sleep)

    @contextmanager
    def _node_lag(self) -> Iterator[None]:
        """TF401347 for a path we created moments ago is the service still propagating it: retry for a
        bounded time (``node_settle_seconds``), then it is a real error."""
        try:
            yield
        except AdoPermanent as exc:
            created = self._nodes_created_at
            lagging = created is not None and self._clock() - created < self._target.node_settle_seconds
            if lagging and any(code in exc.message for code in _NODE_LAG_CODES):
                raise AdoConflict(
                    f"{exc.message} (the path was created moments ago; retrying)",
                    exc.status,
                    self._target.node_retry_seconds,
                    exc.created,
                ) from None
            raise

    async def find_existing(self, item: UploadItem) -> Uploaded | None:
        """The item already in ADO under its key (plans by name+key, suites by requirement), or None."""
        with _shape_guard(AdoTransient, "find_existing"):
            return await self._find_existing(item)

    async def _find_existing(self, item: UploadItem) -> Uploaded | None:
        if item.kind == ItemKind.TEST_PLAN:
            return await self._plans.find_plan(item)
        if item.kind == ItemKind.TEST_SUITE:
            return await self._plans.find_suite(item)
        tag = mapping.tag_of(item.key)
        query = (
            "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project "
            f"AND [System.Tags] CONTAINS '{tag.replace(chr(39), chr(39) * 2)}' ORDER BY [System.Id]"
        )
        reply = await self._http.call("POST", self._urls.wiql(), {"query": query})
        ids = sorted(int(w["id"]) for w in (reply.data or {}).get("workItems", []) if "id" in w)
        for start in range(0, len(ids), _IDS_PER_GET):
            chunk = ids[start : start + _IDS_PER_GET]
            found = await self._http.call("GET", self._urls.work_items(chunk, ["System.Id", "System.Tags"]))
            for work_item in sorted(values(found.data), key=lambda w: int(w.get("id", 0))):
                if _has_tag(work_item, tag):
                    return self._uploaded(work_item)
        return None

    async def upload(self, item: UploadItem, *, reconcile: bool) -> Uploaded:
        """Create ``item`` once (all fields and its link in one call) and finish its remaining steps.

        With ``reconcile`` (an earlier attempt was ambiguous) or ``existing_ado_id`` nothing is created
        before looking it up. If a later step fails the error carries ``created``.
        """
        profile = await self.prepare()
        with _shape_guard(AdoAmbiguous, "upload"):
            return await self._upload(item, profile, reconcile)

    async def _upload(self, item: UploadItem, profile: ProcessProfile, reconcile: bool) -> Uploaded:
        if profile.type_for(item.kind) is None:
            raise missing_type_error(profile.process, item.kind)
        if item.kind == ItemKind.TEST_PLAN:
            return await self._upload_plan(item, profile, reconcile)
        if item.kind == ItemKind.TEST_SUITE:
            return await self._upload_suite(item, reconcile)
        if item.is_update:
            return await self._update(item, profile)
        found: Uploaded | None = None
        if item.existing_ado_id is not None:
            found = await self._get(item.existing_ado_id)
        elif reconcile:
            found = await self._find_existing(item)
        uploaded = found or await self._create(item, profile)
        if item.kind == ItemKind.TEST_CASE:
            await self._add_to_suite(item, uploaded)
        return replace(uploaded, written=owned.pick(mapping.written_fields(item, profile)))

    async def _update(self, item: UploadItem, profile: ProcessProfile) -> Uploaded:
        """PATCH the owned fields with a ``test`` of the revision we wrote. On 412 the work item is read:
        our own write already there (a lost response) is success; a change of fields we own is a
        conflict (nothing written); anything else moved (links, state, tags) → once more at its rev."""
        assert item.existing_ado_id is not None and item.rev is not None
        ado_id, rev = item.existing_ado_id, item.rev
        now = owned.pick(mapping.written_fields(item, profile))
        for _ in range(2):
            ops = mapping.update_patch(now, item.written, rev)
            try:
                reply = await self._http.call(
                    "PATCH", self._urls.work_item(ado_id), ops, patch=True, write=True
                )
            except AdoPermanent as exc:
                if exc.status != 412:
                    raise
                current = (await self._http.call("GET", self._urls.work_item(ado_id))).data
                in_ado = owned.pick(current.get("fields") or {})
                if owned.same(now, in_ado):
                    return replace(self._uploaded(current), written=now)
                if not owned.same(item.written, in_ado):
                    raise AdoRevisionConflict(
                        f"work item {ado_id} was changed in Azure DevOps since revision {rev}",
                        owned.theirs(current),
                        in_ado,
                    ) from None
                rev = int(current["rev"])
                continue
            return replace(self._uploaded(reply.data), written=now)
        raise AdoConflict(f"work item {ado_id} keeps changing; trying again", 412, 1.0)

    async def _create(self, item: UploadItem, profile: ProcessProfile) -> Uploaded:
        type_name, ops = mapping.work_item_patch(item, profile, self._urls.relation)
        with self._node_lag():
            reply = await self._http.call("POST", self._urls.create(type_name), ops, patch=True, write=True)
        return self._uploaded(reply.data)

    async def work_item(self, ado_id: int) -> dict[str, Any]:
        """The work item as Azure DevOps has it now (its fields and ``rev``)."""
        with _shape_guard(AdoTransient, "work_item"):
            data = (await self._http.call("GET", self._urls.work_item(ado_id))).data
            return dict(data)

    async def retire(self, ado_id: int, action: str) -> str:
        """``remove``: to the recycle bin (``DELETE``); ``close``: its type's removed or closed state
        (the first of Removed, Closed, Done its type accepts). Returns what was done."""
        url = self._urls.work_item(ado_id)
        if action == "remove":
            await self._http.call("DELETE", url, write=True)
            return "removed"
        problem: AdoPermanent | None = None
        for state in _CLOSED_STATES:
            ops = [{"op": "add", "path": "/fields/System.State", "value": state}]
            try:
                await self._http.call("PATCH", url, ops, patch=True, write=True)
                return f"state {state}"
            except AdoPermanent as exc:
                if isinstance(exc, AdoNotFound) or exc.status != 400:
                    raise
                problem = exc
        assert problem is not None
        raise problem

    async def _get(self, ado_id: int) -> Uploaded:
        return self._uploaded((await self._http.call("GET", self._urls.work_item(ado_id))).data)

    def _uploaded(self, work_item: dict[str, object]) -> Uploaded:
        ado_id = int(str(work_item["id"]))
        return Uploaded(ado_id, self.work_item_url(ado_id), int(str(work_item.get("rev", 0))), {})

    async def _add_to_suite(self, item: UploadItem, case: Uploaded) -> None:
        plan_id, suite_id = item.refs.get("plan_id"), item.refs.get("suite_id")
        if plan_id is None or suite_id is None:
            return  # a test case uploaded without a plan: nothing more to do
        try:
            await self._plans.add_case(plan_id, suite_id, case.ado_id)
        except AdoError as exc:
            exc.created = case
            raise

    async def _upload_plan(self, item: UploadItem, profile: ProcessProfile, reconcile: bool) -> Uploaded:
        if item.existing_ado_id is not None:
            return await self._plans.get_plan(item.existing_ado_id)
        found = await self._plans.find_plan(item) if reconcile else None
        if found is not None:
            return found
        with self._node_lag():
            return await self._plans.create_plan(item, profile)

    async def _upload_suite(self, item: UploadItem, reconcile: bool) -> Uploaded:
        if item.existing_ado_id is not None:
            plan_id = item.refs.get("plan_id", 0)
            url = self._urls.plan_browser(plan_id, item.existing_ado_id)
            return Uploaded(item.existing_ado_id, url, 0, {"plan_id": plan_id})
        found = await self._plans.find_suite(item) if reconcile else None
        return found or await self._plans.create_suite(item)


@contextmanager
def _shape_guard(error: type[AdoError], what: str) -> Iterator[None]:
    """A response that parsed as JSON but lacks what we need becomes a classified error, not a crash."""
    try:
        yield
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise error(f"{what}: unexpected response from the service ({type(exc).__name__}: {exc})") from None


def _has_tag(work_item: dict[str, object], tag: str) -> bool:
    fields = work_item.get("fields")
    raw = str(fields.get("System.Tags", "")) if isinstance(fields, dict) else ""
    return tag.casefold() in {t.strip().casefold() for t in raw.split(";")}
