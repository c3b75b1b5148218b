"""Error classification and exactly-once creation against the emulator's faults (and a few raw servers)."""

from __future__ import annotations

import time
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from emulator.config import FaultConfig
from outbox.ado.errors import AdoAmbiguous, AdoAuthError, AdoPermanent, AdoThrottled, AdoTransient
from outbox.ado.http import AdoHttp
from outbox.ado.types import Uploaded
from outbox.ado.urls import AdoUrls
from tests.fakes.gate import SimpleGate
from tests.outbox.test_ado_support import PAT, Rig, ServerFactory, emulator_config, rig, upload_item


async def _story(r: Rig) -> Uploaded:
    epic = await r.client.upload(upload_item("epic"), reconcile=False)
    feature = await r.client.upload(upload_item("feature", parent=epic.ado_id), reconcile=False)
    return await r.client.upload(upload_item("story", parent=feature.ado_id), reconcile=False)


def _faults(kind: str, routes: set[str], nth: int = 1, **kwargs: Any) -> FaultConfig:
    return FaultConfig(every_nth={kind: nth}, limit=1, routes=frozenset(routes), **kwargs)  # type: ignore[dict-item]


async def test_wrong_pat_is_an_auth_error_without_the_pat(aiohttp_server: ServerFactory) -> None:
    """A refused PAT gives AdoAuthError telling to check the PAT, and the PAT is in no message."""
    async with rig(aiohttp_server, pat="wrong-secret-pat") as r:
        with pytest.raises(AdoAuthError) as caught:
            await r.client.prepare()
    assert caught.value.status == 401
    assert "check the PAT" in str(caught.value)
    assert "wrong-secret-pat" not in str(caught.value) and PAT not in str(caught.value)


async def _raw_server(aiohttp_server: ServerFactory, response: web.Response) -> str:
    async def handler(request: web.Request) -> web.Response:
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = await aiohttp_server(app)
    return str(server.make_url("/org"))


@pytest.mark.parametrize(
    "response",
    [
        web.Response(status=203, text="<!DOCTYPE html><html>Sign In</html>", content_type="text/html"),
        web.Response(status=200, text="<!DOCTYPE html><html>Sign In</html>", content_type="text/html"),
    ],
    ids=["203-sign-in", "200-html"],
)
async def test_sign_in_pages_are_auth_errors(aiohttp_server: ServerFactory, response: web.Response) -> None:
    """A 203 or an HTML body on a 2xx is an authentication failure, never data."""
    org = await _raw_server(aiohttp_server, response)
    async with aiohttp.ClientSession() as session:
        http = AdoHttp(session, PAT, SimpleGate(1), 5.0)
        with pytest.raises(AdoAuthError, match="check the PAT"):
            await http.call("GET", AdoUrls(org, "P").project_info())


async def test_bom_prefixed_json_is_parsed(aiohttp_server: ServerFactory) -> None:
    """A UTF-8 BOM before the JSON body does not break parsing."""
    body = '\ufeff{"count":1,"value":[{"id":7}]}'.encode()
    org = await _raw_server(
        aiohttp_server, web.Response(status=200, body=body, content_type="application/json")
    )
    async with aiohttp.ClientSession() as session:
        reply = await AdoHttp(session, PAT, SimpleGate(1), 5.0).call(
            "GET", AdoUrls(org, "P").work_item_types()
        )
    assert reply.data == {"count": 1, "value": [{"id": 7}]}


async def test_rule_violation_is_permanent_with_the_tf_message(aiohttp_server: ServerFactory) -> None:
    """A required-field rule error is AdoPermanent and keeps TF401320 and the field name."""
    config = emulator_config(required_fields={"Epic": ("Microsoft.VSTS.Common.Risk",)})
    async with rig(aiohttp_server, config) as r:
        with pytest.raises(AdoPermanent) as caught:
            await r.client.upload(upload_item("epic"), reconcile=False)
    assert caught.value.status == 400
    assert "TF401320" in str(caught.value)
    assert "Risk" in str(caught.value)


async def test_429_is_throttled_with_retry_after_and_pauses_the_gate(aiohttp_server: ServerFactory) -> None:
    """A 429 raises AdoThrottled carrying Retry-After, pauses the gate, and the next request waits for it."""
    config = emulator_config(faults=_faults("throttle", {"create"}, retry_after_seconds=0.02))
    async with rig(aiohttp_server, config) as r:
        await r.client.prepare()
        with pytest.raises(AdoThrottled) as caught:
            await r.client.upload(upload_item("epic"), reconcile=False)
        assert r.gate.deadline > time.monotonic() - 0.02
        epic = await r.client.upload(upload_item("epic"), reconcile=False)
        state = await r.state()
        ids = await r.ids_tagged("bk-epic")
    assert caught.value.retry_after == pytest.approx(0.02)
    assert caught.value.status == 429
    assert ids == [epic.ado_id]
    assert state["early_requests"] == 0


async def test_retry_after_on_a_200_pauses_the_gate(aiohttp_server: ServerFactory) -> None:
    """Retry-After on a successful response still pauses every request of the identity."""
    config = emulator_config(faults=_faults("warning", {"create"}, retry_after_seconds=0.02))
    async with rig(aiohttp_server, config) as r:
        await r.client.prepare()
        before = time.monotonic()
        await r.client.upload(upload_item("epic"), reconcile=False)
        assert r.gate.pauses >= 1 and r.gate.throttles == 1 and r.gate.successes > 0
        assert r.gate.deadline >= before + 0.02
        await r.client.upload(upload_item("feature"), reconcile=False)
        state = await r.state()
    assert state["early_requests"] == 0


@pytest.mark.parametrize("mode", ["disconnect", "502"])
async def test_lost_create_response_is_ambiguous_then_reconciled_once(
    aiohttp_server: ServerFactory, mode: str
) -> None:
    """Commit-then-lose raises AdoAmbiguous; upload(reconcile=True) returns the same id, one item per key."""
    config = emulator_config(faults=_faults("lose_response", {"create"}, lose_response_mode=mode))
    async with rig(aiohttp_server, config) as r:
        with pytest.raises(AdoAmbiguous):
            await r.client.upload(upload_item("epic"), reconcile=False)
        committed = await r.ids_tagged("bk-epic")
        again = await r.client.upload(upload_item("epic"), reconcile=True)
        ids = await r.ids_tagged("bk-epic")
        state = await r.state()
    assert len(committed) == 1
    assert again.ado_id == committed[0]
    assert ids == committed
    assert state["creates_by_tag"]["bk-epic"] == 1


async def test_timeout_after_sending_a_create_is_ambiguous(aiohttp_server: ServerFactory) -> None:
    """A create that commits but answers after the timeout is ambiguous, and reconciling finds it."""
    config = emulator_config(faults=_faults("slow", {"create"}, slow_seconds=0.3))
    async with rig(aiohttp_server, config, timeout_seconds=0.1) as r:
        await r.client.prepare()
        with pytest.raises(AdoAmbiguous):
            await r.client.upload(upload_item("epic"), reconcile=False)
        again = await r.client.upload(upload_item("epic"), reconcile=True)
        ids = await r.ids_tagged("bk-epic")
    assert ids == [again.ado_id]


async def test_500_on_create_is_ambiguous_and_reconcile_creates_when_absent(
    aiohttp_server: ServerFactory,
) -> None:
    """A 500 on a create may hide a write: AdoAmbiguous; reconciling finds nothing and creates exactly one."""
    config = emulator_config(faults=_faults("error_500", {"create"}))
    async with rig(aiohttp_server, config) as r:
        with pytest.raises(AdoAmbiguous) as caught:
            await r.client.upload(upload_item("epic"), reconcile=False)
        assert await r.ids_tagged("bk-epic") == []
        epic = await r.client.upload(upload_item("epic"), reconcile=True)
        ids = await r.ids_tagged("bk-epic")
    assert caught.value.status == 500 and "TF246020" in str(caught.value)
    assert ids == [epic.ado_id]


@pytest.mark.parametrize("kind", ["error_503", "error_503_after"])
async def test_503_on_create_is_ambiguous_and_reconciled_once(
    aiohttp_server: ServerFactory, kind: str
) -> None:
    """A 503 on a create may hide a committed write (Front Door): AdoAmbiguous, and the reconciling
    retry leaves exactly one work item whether or not the first create committed."""
    config = emulator_config(faults=_faults(kind, {"create"}))
    async with rig(aiohttp_server, config) as r:
        with pytest.raises(AdoAmbiguous) as caught:
            await r.client.upload(upload_item("epic"), reconcile=False)
        committed = await r.ids_tagged("bk-epic")
        epic = await r.client.upload(upload_item("epic"), reconcile=True)
        ids = await r.ids_tagged("bk-epic")
    assert caught.value.status == 503
    assert len(committed) == (1 if kind == "error_503_after" else 0)
    assert ids == [epic.ado_id]


async def test_reset_on_a_read_is_transient(aiohttp_server: ServerFactory) -> None:
    """A dropped connection on WIQL (a read) is transient, never ambiguous."""
    config = emulator_config(faults=_faults("reset", {"wiql"}))
    async with rig(aiohttp_server, config) as r:
        with pytest.raises(AdoTransient):
            await r.client.find_existing(upload_item("epic"))
        assert await r.client.find_existing(upload_item("epic")) is None


async def test_existing_id_is_never_created_again(aiohttp_server: ServerFactory) -> None:
    """An item with existing_ado_id is only looked up: no second work item for its key."""
    async with rig(aiohttp_server) as r:
        epic = await r.client.upload(upload_item("epic"), reconcile=False)
        again = await r.client.upload(upload_item("epic", existing=epic.ado_id), reconcile=False)
        ids = await r.ids_tagged("bk-epic")
    assert again.ado_id == epic.ado_id
    assert ids == [epic.ado_id]


async def test_failed_suite_add_carries_the_created_case(aiohttp_server: ServerFactory) -> None:
    """A failed add-to-suite carries the new case; finishing it adds the case and creates nothing."""
    # testplan calls: 1 create plan, 2 create suite, 3 add the case to the suite (fails).
    config = emulator_config(faults=_faults("error_503", {"testplan"}, nth=3))
    async with rig(aiohttp_server, config) as r:
        story = await _story(r)
        plan = await r.client.upload(upload_item("test_plan", parent=story.ado_id), reconcile=False)
        refs = {"plan_id": plan.ado_id, "root_suite_id": plan.extra["root_suite_id"]}
        suite = await r.client.upload(
            upload_item("test_suite", parent=story.ado_id, refs=refs), reconcile=False
        )
        case_refs = {"plan_id": plan.ado_id, "suite_id": suite.ado_id}
        with pytest.raises(AdoAmbiguous) as caught:  # a 503 on a write: it may have happened
            await r.client.upload(
                upload_item("test_case", parent=story.ado_id, refs=case_refs), reconcile=False
            )
        created = caught.value.created
        assert created is not None
        item = upload_item("test_case", parent=story.ado_id, refs=case_refs, existing=created.ado_id)
        finished = await r.client.upload(item, reconcile=False)
        ids = await r.ids_tagged("bk-test_case")
        listed = await r.api(
            "GET", f"Backlogd/_apis/testplan/Plans/{plan.ado_id}/Suites/{suite.ado_id}/TestCase"
        )
    assert finished.ado_id == created.ado_id
    assert ids == [created.ado_id]
    assert [c["workItem"]["id"] for c in listed["value"]] == [created.ado_id]


@pytest.mark.parametrize("kind", ["test_plan", "test_suite"])
async def test_lost_plan_or_suite_create_is_reconciled_once(aiohttp_server: ServerFactory, kind: str) -> None:
    """A lost plan/suite create response is ambiguous; reconciling finds the same plan/suite."""
    nth = 1 if kind == "test_plan" else 2
    config = emulator_config(faults=_faults("lose_response", {"testplan"}, nth=nth))
    async with rig(aiohttp_server, config) as r:
        story = await _story(r)
        plan_item = upload_item("test_plan", parent=story.ado_id)
        if kind == "test_plan":
            with pytest.raises(AdoAmbiguous):
                await r.client.upload(plan_item, reconcile=False)
        plan = await r.client.upload(plan_item, reconcile=kind == "test_plan")
        refs = {"plan_id": plan.ado_id, "root_suite_id": plan.extra["root_suite_id"]}
        suite_item = upload_item("test_suite", parent=story.ado_id, refs=refs)
        if kind == "test_suite":
            with pytest.raises(AdoAmbiguous):
                await r.client.upload(suite_item, reconcile=False)
        suite = await r.client.upload(suite_item, reconcile=True)
        plans = await r.api("GET", "Backlogd/_apis/testplan/plans")
        suites = await r.api("GET", f"Backlogd/_apis/testplan/Plans/{plan.ado_id}/suites")
    assert [p["id"] for p in plans["value"]] == [plan.ado_id]
    assert plan.extra["root_suite_id"] > 0
    requirement_suites = [s["id"] for s in suites["value"] if s["suiteType"] == "requirementTestSuite"]
    assert requirement_suites == [suite.ado_id]
