"""Pre-flight against the emulator: one test per problem kind, each naming what is wrong and the fix."""

from __future__ import annotations

import socket

import aiohttp

from emulator.control import snapshot
from emulator.routing import EMULATOR_STATE
from outbox.ado.client import AdoClient
from outbox.ado.preflight import CheckReport
from outbox.ado.types import AdoTarget
from tests.fakes.gate import SimpleGate
from tests.outbox.test_ado_support import PAT, PROJECT, Rig, ServerFactory, emulator_config, rig


def _codes(report: CheckReport) -> list[str]:
    return [p.code for p in report.problems]


def _nothing_written(r: Rig) -> None:
    state = snapshot(r.server.app[EMULATOR_STATE])
    assert state["work_items"] == [] and state["test_plans"] == [] and state["creates_by_tag"] == {}
    nodes = r.server.app[EMULATOR_STATE].nodes[(PROJECT, "area")]
    assert nodes.children == []


async def test_healthy_target_passes_every_check_and_writes_nothing(aiohttp_server: ServerFactory) -> None:
    """An Agile project with a full PAT passes every check (ok, exit-0 material) and nothing is written."""
    async with rig(aiohttp_server, area_path="Team A", iteration_path="Release 1\\Sprint 9") as r:
        report = await r.client.check(include_qa=True)
        _nothing_written(r)
    assert report.ok and not report.fatal and report.qa_available, report.problems
    assert report.process == "Agile"
    text = "\n".join(report.lines())
    assert "area path Backlogd\\Team A will be created" in text and "Test Plans access" in text
    assert text.endswith("result: all is well")


async def test_refused_pat_is_named_with_the_scopes_to_create(aiohttp_server: ServerFactory) -> None:
    """A refused PAT is one fatal `pat` problem telling to create a PAT with the needed scopes."""
    async with rig(aiohttp_server, pat="not-the-pat") as r:
        report = await r.client.check(include_qa=True)
    assert _codes(report) == ["pat"] and report.fatal
    assert "Work Items (Read & write)" in report.problems[0].fix and "not-the-pat" not in str(
        report.as_dict()
    )


async def test_unknown_project_is_named(aiohttp_server: ServerFactory) -> None:
    """A project that does not exist is a fatal `project` problem naming it and the setting to fix."""
    async with rig(aiohttp_server, project="Nope") as r:
        report = await r.client.check(include_qa=True)
    assert _codes(report) == ["project"]
    assert "'Nope'" in report.problems[0].message and "azure_devops.project" in report.problems[0].fix


async def test_unreachable_organization_is_a_connection_problem() -> None:
    """Nothing listening at the organization URL is a fatal `connection` problem naming organization_url."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    async with aiohttp.ClientSession() as session:
        target = AdoTarget(f"http://127.0.0.1:{port}/org", PROJECT, PAT, timeout_seconds=2.0)

        waits: list[float] = []

        async def no_wait(seconds: float) -> None:
            waits.append(seconds)

        report = await AdoClient(session, target, SimpleGate(2)).check(include_qa=True, sleep=no_wait)
    assert waits == [0.2, 0.4]  # a refused connection is tried three times before it is reported
    assert _codes(report) == ["connection"] and "organization_url" in report.problems[0].fix


async def test_read_only_pat_lacks_the_work_item_write_scope(aiohttp_server: ServerFactory) -> None:
    """A PAT with only vso.work is a fatal `scope` problem asking for Work Items (Read & write)."""
    config = emulator_config(pat_scopes={PAT: frozenset({"vso.work", "vso.test_write"})})
    async with rig(aiohttp_server, config) as r:
        report = await r.client.check(include_qa=True)
    assert _codes(report) == ["scope"] and report.fatal
    assert "vso.work_write" in report.problems[0].fix


async def test_pat_without_test_management_runs_without_qa(aiohttp_server: ServerFactory) -> None:
    """A PAT without Test Management is a non-fatal problem that switches QA off and says which scope."""
    config = emulator_config(pat_scopes={PAT: frozenset({"vso.work_write"})})
    async with rig(aiohttp_server, config) as r:
        report = await r.client.check(include_qa=True)
    assert _codes(report) == ["scope"] and not report.fatal and not report.qa_available
    assert "Test Management" in report.problems[0].fix


async def test_missing_node_without_admin_rights_names_permission_and_path(
    aiohttp_server: ServerFactory,
) -> None:
    """A missing area path the user may not create names the path, the permission and the fix."""
    async with rig(aiohttp_server, emulator_config(node_admin=False), area_path="Team A\\Web") as r:
        report = await r.client.check(include_qa=False)
        _nothing_written(r)
    assert _codes(report) == ["node_permission"] and report.fatal
    problem = report.problems[0]
    assert "Backlogd\\Team A\\Web" in problem.message and "Create child nodes" in problem.message
    assert "azure_devops.area_path" in problem.fix and "PAT" not in problem.fix


async def test_existing_paths_need_no_admin_rights(aiohttp_server: ServerFactory) -> None:
    """Paths that already exist pass even without the right to create nodes."""
    async with rig(aiohttp_server, emulator_config(node_admin=False), iteration_path="Sprint 1") as r:
        report = await r.client.check(include_qa=False)
    assert report.ok, report.problems


async def test_no_test_plans_licence_switches_qa_off(aiohttp_server: ServerFactory) -> None:
    """Without Basic + Test Plans the check warns (non-fatal), QA is off, and the fix names the access."""
    async with rig(aiohttp_server, emulator_config(test_plans_access=False)) as r:
        report = await r.client.check(include_qa=True)
        _nothing_written(r)
    assert _codes(report) == ["test_plans"] and not report.fatal and not report.qa_available
    assert "Basic + Test Plans" in report.problems[0].fix
    assert report.lines()[-1] == "result: runs, with warnings"


async def test_custom_required_field_is_named_until_field_defaults_fill_it(
    aiohttp_server: ServerFactory,
) -> None:
    """An always-required custom field is a fatal problem naming type, field and the field_defaults fix;
    with a value in field_defaults the check passes."""
    config = emulator_config(required_fields={"User Story": ("Custom.Team",)})
    async with rig(aiohttp_server, config) as r:
        report = await r.client.check(include_qa=True)
    assert _codes(report) == ["required_field"]
    problem = report.problems[0]
    assert "'User Story'" in problem.message and "Custom.Team" in problem.message
    assert 'field_defaults, e.g. {"User Story": {"Custom.Team": "<value>"}}' in problem.fix
    defaults = {"User Story": {"Custom.Team": "Payroll"}}
    async with rig(aiohttp_server, config, field_defaults=defaults) as r:
        assert (await r.client.check(include_qa=True)).ok


async def test_basic_process_runs_without_qa(aiohttp_server: ServerFactory) -> None:
    """A Basic project is fine for the backlog; QA is reported as not available for this process."""
    async with rig(aiohttp_server, emulator_config("Basic")) as r:
        report = await r.client.check(include_qa=True)
        without_qa = await r.client.check(include_qa=False)
    assert _codes(report) == ["qa_unavailable"] and not report.fatal and not report.qa_available
    assert "not available for process Basic" in report.problems[0].message
    assert without_qa.ok


async def test_every_problem_is_reported_at_once(aiohttp_server: ServerFactory) -> None:
    """Several problems (a required field, no node rights, no Test Plans) come in one report."""
    config = emulator_config(
        required_fields={"Task": ("Custom.CostCenter",)}, node_admin=False, test_plans_access=False
    )
    async with rig(aiohttp_server, config, iteration_path="Release 9") as r:
        report = await r.client.check(include_qa=True)
    assert sorted(_codes(report)) == ["node_permission", "required_field", "test_plans"]
