"""The emulator's WIQL subset: a pure parser/evaluator, and the endpoint's scoping and limits."""

from __future__ import annotations

import pytest

from emulator import EmulatorConfig, create_emulator_app
from emulator.wiql import BoolOp, Condition, Macro, WiqlError, matches, parse
from tests.emulator.conftest import PAT, PROJECTS, Ado, basic

STORY = {
    "System.Id": 7,
    "System.TeamProject": "Backlogd",
    "System.WorkItemType": "User Story",
    "System.Title": "Sign in",
    "System.Tags": "bi:run1; bk:abc",
    "System.Parent": 3,
}


def test_parse_builds_and_or_tree_with_parentheses() -> None:
    """AND binds tighter than OR and parentheses group, with @project kept as a macro."""
    query = parse(
        "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project AND "
        "([System.WorkItemType] = 'Task' OR [System.Tags] CONTAINS 'x') ORDER BY [System.Id] DESC"
    )
    assert query.fields == ("System.Id",)
    assert query.order_by == (("System.Id", True),)
    assert isinstance(query.where, BoolOp) and query.where.op == "and"
    assert query.where.operands[0] == Condition("System.TeamProject", "=", (Macro("project"),))
    assert isinstance(query.where.operands[1], BoolOp) and query.where.operands[1].op == "or"
    assert query.uses_project_macro


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("[System.Tags] CONTAINS 'bk:abc'", True),
        ("[System.Tags] CONTAINS 'bk:ab'", False),  # whole-tag match, not substring
        ("[System.Tags] CONTAINS 'BK:ABC'", True),
        ("[System.Tags] NOT CONTAINS 'bk:abc'", False),
        ("[System.Title] = 'sign in'", True),
        ("[System.Title] = 'Sign'", False),
        ("[System.Parent] = 3", True),
        ("[System.WorkItemType] <> 'Task'", True),
        ("[System.WorkItemType] IN ('Task', 'User Story')", True),
        ("[System.TeamProject] = @project AND [System.Id] = 8", False),
        ("[System.Id] = 8 OR ([System.Id] = 7 AND [System.Title] = 'Sign in')", True),
        ("NOT [System.Id] = 7", False),
        ("[System.Title] = 'it''s'", False),
    ],
)
def test_matches(where: str, expected: bool) -> None:
    """Conditions evaluate like the service: case-insensitive strings, whole-tag CONTAINS on Tags."""
    query = parse(f"SELECT [System.Id] FROM WorkItems WHERE {where}")
    assert matches(query.where, STORY, "Backlogd") is expected


@pytest.mark.parametrize(
    "text",
    [
        "SELECT * FROM WorkItems",
        "SELECT [System.Id] FROM WorkItemLinks",
        "SELECT [System.Id] FROM WorkItems WHERE ([System.Id] = 1",
        "SELECT [System.Id] FROM WorkItems WHERE [System.Id] ~ 1",
        "SELECT [System.Id] FROM WorkItems WHERE [System.CreatedDate] = @today",
        "DELETE FROM WorkItems",
    ],
)
def test_unsupported_or_invalid_queries_raise(text: str) -> None:
    """SELECT *, other sources, bad syntax and unknown macros are errors (the endpoint answers 400)."""
    with pytest.raises(WiqlError):
        parse(text)


async def _seed(emu: Ado) -> list[int]:
    ids = []
    for title, tags in (("A", "bi:r; bk:1"), ("B", "bi:r; bk:2"), ("C", "other")):
        ids.append((await emu.create("User Story", {"System.Title": title, "System.Tags": tags})).json["id"])
    await emu.create(
        "Product Backlog Item", {"System.Title": "elsewhere", "System.Tags": "bi:r"}, project="ScrumProj"
    )
    return ids


async def test_wiql_endpoint_returns_ids_only_scoped_to_project(emu: Ado) -> None:
    """The project endpoint resolves @project, returns ids and URLs only, ordered by id."""
    ids = await _seed(emu)
    reply = await emu.wiql(
        "SELECT [System.Id], [System.Title] FROM WorkItems WHERE [System.TeamProject] = @project "
        "AND [System.Tags] CONTAINS 'bi:r' ORDER BY [System.Id]"
    )
    assert reply.status == 200
    assert [w["id"] for w in reply.json["workItems"]] == ids[:2]
    assert set(reply.json["workItems"][0]) == {"id", "url"}


async def test_wiql_org_endpoint_rejects_project_macro_and_spans_projects(emu: Ado) -> None:
    """On the org endpoint @project is a 400; without it the query spans every project."""
    await _seed(emu)
    scoped = await emu.wiql(
        "SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project", project=None
    )
    assert scoped.status == 400 and "@project" in scoped.json["message"]
    spanning = await emu.wiql(
        "SELECT [System.Id] FROM WorkItems WHERE [System.Tags] CONTAINS 'bi:r'", project=None
    )
    assert len(spanning.json["workItems"]) == 3


async def test_wiql_select_star_and_syntax_errors_are_400(emu: Ado) -> None:
    """SELECT * and malformed queries are 400 with a WrappedException body."""
    star = await emu.wiql("SELECT * FROM WorkItems")
    assert star.status == 400 and star.json["typeKey"] == "QuerySyntaxException"
    assert (await emu.wiql("SELECT [System.Id] FROM WorkItems WHERE (")).status == 400


async def test_wiql_result_cap(aiohttp_server, aiohttp_client) -> None:  # type: ignore[no-untyped-def]
    """More matches than the cap (20,000 by default; 2 here) is 400 VS402337."""
    app = create_emulator_app(EmulatorConfig(projects=PROJECTS, max_wiql_results=2))
    client = await aiohttp_client(await aiohttp_server(app))
    emu = Ado(client.session, str(client.make_url("")).rstrip("/"), headers={"Authorization": basic(PAT)})
    for title in ("a", "b", "c"):
        await emu.create("Task", {"System.Title": title})
    reply = await emu.wiql("SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project")
    assert reply.status == 400 and "VS402337" in reply.json["message"]


async def test_wiql_parent_and_title_conditions(emu: Ado) -> None:
    """`[System.Parent] = N` finds children and `[System.Title] = '…'` exact titles."""
    parent = (await emu.create("Feature", {"System.Title": "F"})).json["id"]
    rel = ("System.LinkTypes.Hierarchy-Reverse", parent)
    child = (await emu.create("User Story", {"System.Title": "S"}, relations=[rel])).json["id"]
    by_parent = await emu.wiql(f"SELECT [System.Id] FROM WorkItems WHERE [System.Parent] = {parent}")
    assert [w["id"] for w in by_parent.json["workItems"]] == [child]
    by_title = await emu.wiql("SELECT [System.Id] FROM WorkItems WHERE [System.Title] = 'f'")
    assert [w["id"] for w in by_title.json["workItems"]] == [parent]
