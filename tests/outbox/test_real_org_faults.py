"""The relay and the real ADO client against an emulator on loopback with the faults a real organisation
shows (field notes of the reference): each run ends with 0 duplicates and 0 items a retry would save."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from emulator.config import FaultConfig
from emulator.control import snapshot
from emulator.routing import EMULATOR_STATE
from outbox.ado.errors import AdoConflict
from tests.outbox.test_upload_support import (
    ServerFactory,
    UploadRig,
    check_exactly_once,
    emulator_config,
    stage,
    tree,
    upload_rig,
)

JOB = "job-real-org"


def _state(rig: UploadRig) -> dict[str, Any]:
    return snapshot(rig.server.app[EMULATOR_STATE])


async def test_503_after_commit_never_duplicates(aiohttp_server: ServerFactory, tmp_path: Path) -> None:
    """With 25% of creates committed and then answered 503 (Front Door), every item lands exactly once."""
    faults = FaultConfig(error_503_after=0.25, seed=3, routes=frozenset({"create", "testplan"}))
    async with upload_rig(aiohttp_server, tmp_path, emulator_config(faults), max_attempts=30) as rig:
        await stage(rig.store, JOB, tree(JOB, 2, 2, 2, 2, 1))
        await rig.upload(JOB)
        emu, rows = _state(rig), await rig.store.items(JOB)
    assert emu["faults_injected"]["error_503_after"] >= 5
    check_exactly_once(rows, emu)  # 0 duplicates, 0 dead


async def test_parallel_suites_under_one_plan_do_not_conflict(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """Suites of one plan are created one at a time, so the service's TF26071 on parallel suite saves
    never fires and no suite (or its test cases) is lost."""
    faults = FaultConfig(suite_conflicts=True, suite_save_seconds=0.01)
    async with upload_rig(aiohttp_server, tmp_path, emulator_config(faults), max_attempts=4) as rig:
        await stage(rig.store, JOB, tree(JOB, 1, 1, 8, 1, 2))  # 8 suites under one plan's root suite
        await rig.upload(JOB)
        emu, rows = _state(rig), await rig.store.items(JOB)
    check_exactly_once(rows, emu)
    assert emu["faults_injected"].get("suite_conflict", 0) == 0


async def test_tf26071_is_a_retryable_conflict(aiohttp_server: ServerFactory, tmp_path: Path) -> None:
    """A suite save that meets TF26071 (someone else saving under the root suite) is AdoConflict, a
    transient error; the relay retries it and the suite lands once."""
    async with upload_rig(
        aiohttp_server, tmp_path, emulator_config(FaultConfig(suite_conflicts=True))
    ) as rig:
        items = tree(JOB, 1, 1, 1, 0, 0)
        await stage(rig.store, JOB, [i for i in items if i.kind != "test_suite"])
        await rig.upload(JOB)
        plan = next(r for r in await rig.store.items(JOB) if r.kind == "test_plan")
        state = rig.server.app[EMULATOR_STATE]
        state.saving_suites.add(plan.ado_extra["root_suite_id"])  # another client is saving a suite
        story = next(r for r in await rig.store.items(JOB) if r.kind == "story")
        from outbox.ado.types import UploadItem

        suite = UploadItem(
            id="s", job_id=JOB, kind="test_suite", title="S", body={}, key="bk-s", run_tag="bi-x",
            parent_ado_id=story.ado_id,
            refs={"plan_id": plan.ado_id or 0, "root_suite_id": plan.ado_extra["root_suite_id"]},
        )  # fmt: skip
        with pytest.raises(AdoConflict) as caught:
            await rig.client.upload(suite, reconcile=False)
        state.saving_suites.clear()
        done = await rig.client.upload(suite, reconcile=False)
    assert caught.value.status == 409 and "TF26071" in caught.value.message
    assert done.ado_id > 0


async def test_node_lag_after_creation_is_retried(aiohttp_server: ServerFactory, tmp_path: Path) -> None:
    """A new area and iteration rejected (TF401347) for a while after their creation are retried: every
    item lands once, none dead."""
    faults = FaultConfig(node_lag_seconds=0.15)
    target = {"area_path": "Team A", "iteration_path": "Release 1\\Sprint 4", "node_retry_seconds": 0.02}
    async with upload_rig(
        aiohttp_server, tmp_path, emulator_config(faults), target_kw=target, max_attempts=50
    ) as rig:
        await stage(rig.store, JOB, tree(JOB, 2, 2, 1, 1, 1))
        await rig.upload(JOB)
        emu, rows = _state(rig), await rig.store.items(JOB)
    check_exactly_once(rows, emu)
    assert {w["fields"]["System.AreaPath"] for w in emu["work_items"]} == {"Backlogd\\Team A"}
    assert any(e.payload.get("state") == "retry_wait" for e in rig.events if e.type == "upload")


async def test_node_lag_retry_is_bounded(aiohttp_server: ServerFactory, tmp_path: Path) -> None:
    """TF401347 past ``node_settle_seconds`` is a real error: the item ends dead with the message."""
    faults = FaultConfig(node_lag_seconds=3600)
    target = {"area_path": "Team B", "node_settle_seconds": 0.05, "node_retry_seconds": 0.01}
    async with upload_rig(
        aiohttp_server, tmp_path, emulator_config(faults), target_kw=target, max_attempts=50
    ) as rig:
        await stage(rig.store, JOB, tree(JOB, 1, 0, qa=False))
        await rig.upload(JOB)
        rows = await rig.store.items(JOB)
    assert [r.state for r in rows] == ["dead"] and "TF401347" in (rows[0].error or "")
    assert not (rows[0].error or "").startswith("gave up")  # stopped by the bound, not by attempts


async def test_no_node_rights_names_the_permission_not_the_pat(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """Without the right to create nodes the items end dead naming the permission and the path, not
    the PAT."""
    async with upload_rig(
        aiohttp_server, tmp_path, emulator_config(node_admin=False), target_kw={"area_path": "Team C"}
    ) as rig:
        await stage(rig.store, JOB, tree(JOB, 1, 0, qa=False))
        await rig.upload(JOB)
        rows = await rig.store.items(JOB)
    error = rows[0].error or ""
    assert rows[0].state == "dead" and "Create child nodes" in error and "Backlogd\\Team C" in error
    assert "check the PAT" not in error


async def test_new_iteration_gets_dates_and_joins_the_default_team(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """A created sprint carries the configured dates and is on the project's default team."""
    target = {
        "iteration_path": "Release 2\\Sprint 1",
        "iteration_start": "2026-01-05",
        "iteration_finish": "2026-01-16",
    }
    async with upload_rig(aiohttp_server, tmp_path, emulator_config(), target_kw=target) as rig:
        await stage(rig.store, JOB, tree(JOB, 1, 0, qa=False))
        await rig.upload(JOB)
        state = rig.server.app[EMULATOR_STATE]
        release = state.find_node("Backlogd", "iteration", ["Release 2"])
        sprint = state.find_node("Backlogd", "iteration", ["Release 2", "Sprint 1"])
        teams = dict(state.team_iterations)
    assert release is not None and sprint is not None
    assert sprint.attributes == {"startDate": "2026-01-05T00:00:00Z", "finishDate": "2026-01-16T00:00:00Z"}
    assert release.attributes == {}
    assert teams == {"Backlogd/Backlogd Team": [sprint.identifier]}


async def test_custom_required_field_is_filled_from_field_defaults(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """An always-required custom field is filled from field_defaults: every story lands, none dies
    with TF401320."""
    config = emulator_config(required_fields={"User Story": ("Custom.Team",)})
    target = {"field_defaults": {"user story": {"Custom.Team": "Payroll"}}}
    async with upload_rig(aiohttp_server, tmp_path, config, target_kw=target) as rig:
        await stage(rig.store, JOB, tree(JOB, 1, 1, 2, 1, 1))
        await rig.upload(JOB)
        emu, rows = _state(rig), await rig.store.items(JOB)
    check_exactly_once(rows, emu)
    stories = [w for w in emu["work_items"] if w["type"] == "User Story"]
    assert stories and {w["fields"]["Custom.Team"] for w in stories} == {"Payroll"}


async def test_no_test_plans_licence_names_the_access_level(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """Without Basic + Test Plans a plan ends dead naming that access level, not the PAT; the
    backlog lands."""
    async with upload_rig(aiohttp_server, tmp_path, emulator_config(test_plans_access=False)) as rig:
        await stage(rig.store, JOB, tree(JOB, 1, 1, 1, 1, 1))
        await rig.upload(JOB)
        rows = await rig.store.items(JOB)
    plan = next(r for r in rows if r.kind == "test_plan")
    assert plan.state == "dead" and "Basic + Test Plans" in (plan.error or "")
    assert "check the PAT" not in (plan.error or "")
    backlog = {r.state for r in rows if r.kind in ("epic", "feature", "story", "task")}
    assert backlog == {"uploaded"}  # (test cases wait on their suite: blocked, never lost)


async def test_basic_with_the_test_types_uploads_qa_under_the_basic_mapping(
    aiohttp_server: ServerFactory, tmp_path: Path
) -> None:
    """A Basic organization that added the test types gets its QA too; features are Epics related to
    their epic (Epic → Issue → Task on the boards), and every item lands once."""
    config = emulator_config(basic_test_types=True).model_copy(update={"projects": (("Backlogd", "Basic"),)})
    async with upload_rig(aiohttp_server, tmp_path, config) as rig:
        await stage(rig.store, JOB, tree(JOB, 1, 2, 2, 1, 1))
        await rig.upload(JOB)
        emu, rows = _state(rig), await rig.store.items(JOB)
    by_id = {r.id: r for r in rows}
    assert {r.state for r in rows} == {"uploaded"}
    items = {w["id"]: w for w in emu["work_items"]}
    for row in rows:
        if row.kind == "feature":
            feature = items[row.ado_id]
            epic_id = by_id[row.parent_id or ""].ado_id
            assert feature["type"] == "Epic" and feature["parent_id"] is None
            assert {"rel": "System.LinkTypes.Related", "target": epic_id} in [
                {"rel": r["rel"], "target": r["target"]} for r in feature["relations"]
            ]
        if row.kind == "story":
            assert items[row.ado_id]["type"] == "Issue"
            assert items[row.ado_id]["parent_id"] == by_id[row.parent_id or ""].ado_id
    assert len(emu["suites"]) == 1 * 2 * (1 + 2)  # per feature: the root suite and one per story
    creates = [n for tag, n in emu["creates_by_tag"].items() if tag.startswith("bk-")]
    assert creates and set(creates) == {1}
