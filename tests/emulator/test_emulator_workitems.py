"""Work item create/update/get against the emulator: the real service's statuses, shapes and rules."""

from __future__ import annotations

import pytest

from tests.emulator.conftest import PATCH_JSON, Ado

TITLE = "System.Title"
PARENT = "System.LinkTypes.Hierarchy-Reverse"
CHILD = "System.LinkTypes.Hierarchy-Forward"


async def test_create_returns_200_with_defaults_and_org_wide_ids(emu: Ado) -> None:
    """Create answers 200 (not 201), fills State/Reason/Priority/ValueArea/path defaults; ids are org-wide."""
    first = await emu.create("User Story", {TITLE: "Sign in"})
    second = await emu.create("Product Backlog Item", {TITLE: "Scrum item"}, project="ScrumProj")
    assert first.status == 200 and second.status == 200
    fields = first.json["fields"]
    assert fields["System.State"] == "New" and fields["System.Reason"] == "New"
    assert fields["Microsoft.VSTS.Common.Priority"] == 2
    assert fields["Microsoft.VSTS.Common.ValueArea"] == "Business"
    assert fields["System.AreaPath"] == "Backlogd" and fields["System.IterationPath"] == "Backlogd"
    assert first.json["rev"] == 1 and "api-version=7.1" in first.headers["Content-Type"]
    assert (first.json["id"], second.json["id"]) == (1, 2)
    assert second.json["fields"]["System.Reason"] == "New backlog item"


async def test_basic_task_defaults_to_todo(emu: Ado) -> None:
    """A Basic-process Task starts in To Do / Added to backlog."""
    reply = await emu.create("Task", {TITLE: "Do it"}, project="BasicProj")
    assert reply.status == 200
    assert reply.json["fields"]["System.State"] == "To Do"
    assert reply.json["fields"]["System.Reason"] == "Added to backlog"


async def test_create_requires_json_patch_media_type(emu: Ado) -> None:
    """A create with application/json is refused with 415 and the service's Content-Type message."""
    path = "/backlogd/Backlogd/_apis/wit/workitems/$Task?api-version=7.1"
    reply = await emu.request("POST", path, [{"op": "add", "path": "/fields/System.Title", "value": "x"}])
    assert reply.status == 415
    assert 'The request indicated a Content-Type of "application/json"' in reply.json["message"]


async def test_update_requires_json_patch_media_type(emu: Ado) -> None:
    """An update with application/json is refused with 415 too."""
    item = (await emu.create("Task", {TITLE: "x"})).json["id"]
    reply = await emu.request("PATCH", f"/backlogd/_apis/wit/workitems/{item}?api-version=7.1", [])
    assert reply.status == 415


async def test_api_version_required_on_writes_but_accepted_in_accept_header(emu: Ado) -> None:
    """A write without api-version is a 400 VssVersionNotSpecifiedException; the Accept header form works."""
    missing = await emu.create("Task", {TITLE: "x"}, query="")
    assert missing.status == 400 and missing.json["typeKey"] == "VssVersionNotSpecifiedException"
    path = "/backlogd/Backlogd/_apis/wit/workitems/$Task"
    ops = [{"op": "add", "path": "/fields/System.Title", "value": "x"}]
    headers = {"Content-Type": PATCH_JSON, "Accept": "application/json;api-version=7.1"}
    assert (await emu.request("POST", path, ops, headers=headers)).status == 200


async def test_type_names_case_insensitive_plus_is_not_space_and_dollar_required(emu: Ado) -> None:
    """`$user%20story` works, `$User+Story` is an unknown type (404), and a missing `$` is 404."""
    assert (await emu.create("user story", {TITLE: "x"})).status == 200
    plus = await emu.request(
        "POST",
        "/backlogd/Backlogd/_apis/wit/workitems/$User+Story?api-version=7.1",
        [{"op": "add", "path": "/fields/System.Title", "value": "x"}],
        headers={"Content-Type": PATCH_JSON},
    )
    assert plus.status == 404 and plus.json["typeKey"] == "WorkItemTypeNotFoundException"
    no_dollar = await emu.request(
        "POST",
        "/backlogd/Backlogd/_apis/wit/workitems/task?api-version=7.1",
        [],
        headers={"Content-Type": PATCH_JSON},
    )
    assert no_dollar.status == 404


async def test_routes_and_projects_are_case_insensitive_and_guid_addressable(emu: Ado) -> None:
    """Routes match regardless of case, and a project is found by name (any case) or GUID."""
    reply = await emu.request("GET", "/BACKLOGD/_apis/projects/backlogd?includeCapabilities=true")
    assert reply.status == 200 and reply.json["capabilities"]["processTemplate"]["templateName"] == "Agile"
    by_guid = await emu.request("GET", f"/backlogd/_apis/projects/{reply.json['id']}")
    assert by_guid.status == 200 and "capabilities" not in by_guid.json
    missing = await emu.request("GET", "/backlogd/_apis/projects/Nope")
    assert missing.status == 404 and missing.json["message"].startswith("TF200016")


@pytest.mark.parametrize(
    ("project", "type_name", "field", "ok"),
    [
        ("Backlogd", "User Story", "Microsoft.VSTS.Scheduling.StoryPoints", True),
        ("ScrumProj", "Product Backlog Item", "Microsoft.VSTS.Scheduling.StoryPoints", False),
        ("ScrumProj", "Product Backlog Item", "Microsoft.VSTS.Scheduling.Effort", True),
        ("CmmiProj", "Requirement", "Microsoft.VSTS.Scheduling.Size", True),
        ("BasicProj", "Issue", "Microsoft.VSTS.Common.AcceptanceCriteria", False),
        ("ScrumProj", "Task", "Microsoft.VSTS.Scheduling.OriginalEstimate", False),
        ("BasicProj", "Task", "Microsoft.VSTS.Scheduling.RemainingWork", True),
        ("Backlogd", "Task", "Microsoft.VSTS.Common.Activity", True),
        ("CmmiProj", "Task", "Microsoft.VSTS.Common.Activity", False),
        ("CmmiProj", "Task", "Microsoft.VSTS.Common.Discipline", True),
        ("Backlogd", "Task", "Custom.Unknown", False),
    ],
)
async def test_fields_validated_per_process(
    emu: Ado, project: str, type_name: str, field: str, ok: bool
) -> None:
    """A field absent from the type in that process is 400 TF51535; a present one is accepted."""
    value = "Development" if "Activity" in field else ("Test" if "Discipline" in field else 3)
    if "AcceptanceCriteria" in field:
        value = "<ul><li>x</li></ul>"
    reply = await emu.create(type_name, {TITLE: "x", field: value}, project=project)
    if ok:
        assert reply.status == 200, reply.text
    else:
        assert reply.status == 400 and reply.json["message"].startswith("TF51535")


async def test_title_rules(emu: Ado) -> None:
    """Title is required and limited to 255 characters (TF401320 rule errors)."""
    too_long = await emu.create("Task", {TITLE: "x" * 256})
    assert too_long.status == 400 and too_long.json["typeKey"] == "RuleValidationException"
    assert (await emu.create("Task", {TITLE: "x" * 255})).status == 200
    missing = await emu.create("Task", {"System.Description": "no title"})
    assert missing.status == 400 and "TF401320" in missing.json["message"]
    assert missing.json["customProperties"]["RuleValidationErrors"][0]["fieldReferenceName"] == TITLE


async def test_title_limit_counts_utf16_code_units(emu: Ado) -> None:
    """The 255 limit is in UTF-16 code units: 128 emoji (256 units) are refused, 127 (254) accepted."""
    too_long = await emu.create("Task", {TITLE: "\U0001f600" * 128})
    assert too_long.status == 400 and too_long.json["typeKey"] == "RuleValidationException"
    assert (await emu.create("Task", {TITLE: "\U0001f600" * 127 + "x"})).status == 200


async def test_wrong_value_types_and_picklists_rejected(emu: Ado) -> None:
    """Priority must be 1–4 (numeric strings coerced), story points numeric."""
    assert (await emu.create("Task", {TITLE: "x", "Microsoft.VSTS.Common.Priority": 7})).status == 400
    coerced = await emu.create("Task", {TITLE: "x", "Microsoft.VSTS.Common.Priority": "1"})
    assert coerced.json["fields"]["Microsoft.VSTS.Common.Priority"] == 1
    bad = await emu.create("User Story", {TITLE: "x", "Microsoft.VSTS.Scheduling.StoryPoints": "five"})
    assert bad.status == 400


async def test_tree_paths_must_be_project_rooted_backslash_paths(emu: Ado) -> None:
    """`Backlogd\\Sprint 1` is valid; a leading backslash, an Iteration segment or `/` are TF401347."""
    ok = await emu.create("Task", {TITLE: "x", "System.IterationPath": "Backlogd\\Sprint 1"})
    assert ok.status == 200
    for bad in ("\\Backlogd\\Iteration\\Sprint 1", "Backlogd/Sprint 1", "Backlogd\\Sprint 9"):
        reply = await emu.create("Task", {TITLE: "x", "System.IterationPath": bad})
        assert reply.status == 400 and reply.json["message"].startswith("TF401347"), bad


async def test_tag_rules_and_merge_vs_replace(emu: Ado) -> None:
    """Tags are joined by '; '; add merges on update, replace overwrites; commas and >100 tags are refused."""
    item = (await emu.create("Task", {TITLE: "x", "System.Tags": "a;b"})).json
    assert item["fields"]["System.Tags"] == "a; b"
    merged = await emu.patch(item["id"], [{"op": "add", "path": "/fields/System.Tags", "value": "c; A"}])
    assert merged.json["fields"]["System.Tags"] == "a; b; c"
    replaced = await emu.patch(item["id"], [{"op": "replace", "path": "/fields/System.Tags", "value": "z"}])
    assert replaced.json["fields"]["System.Tags"] == "z"
    assert (await emu.create("Task", {TITLE: "x", "System.Tags": "a,b"})).status == 400
    many = "; ".join(f"t{i}" for i in range(101))
    assert (await emu.create("Task", {TITLE: "x", "System.Tags": many})).status == 400
    assert (await emu.create("Task", {TITLE: "x", "System.Tags": "x" * 401})).status == 400


async def test_parent_link_adds_reciprocal_and_system_parent(emu: Ado) -> None:
    """A Hierarchy-Reverse link sets System.Parent on the child and a named Child link on the parent."""
    parent = (await emu.create("Feature", {TITLE: "F"})).json["id"]
    child = await emu.create("User Story", {TITLE: "S"}, relations=[(PARENT, parent)])
    assert child.status == 200
    assert child.json["fields"]["System.Parent"] == parent
    assert child.json["relations"][0]["attributes"] == {"isLocked": False, "name": "Parent"}
    assert child.json["relations"][0]["url"].endswith(f"/_apis/wit/workItems/{parent}")
    got = await emu.request("GET", f"/backlogd/Backlogd/_apis/wit/workitems/{parent}?$expand=relations")
    rel = got.json["relations"][0]
    assert rel["rel"] == CHILD and rel["attributes"]["name"] == "Child"
    assert got.json["rev"] == 1  # link-only changes do not bump rev


async def test_relation_rules(emu: Ado) -> None:
    """Relative URLs, missing targets, a second parent and cycles are all 400; `/relations` is refused."""
    a = (await emu.create("Epic", {TITLE: "A"})).json["id"]
    b = (await emu.create("Feature", {TITLE: "B"}, relations=[(PARENT, a)])).json["id"]
    other = (await emu.create("Epic", {TITLE: "O"})).json["id"]
    relative = [
        {"op": "add", "path": "/relations/-", "value": {"rel": PARENT, "url": f"/_apis/wit/workItems/{a}"}}
    ]
    assert (await emu.patch(b, relative)).status == 400
    assert (await emu.create("Task", {TITLE: "x"}, relations=[(PARENT, 999)])).status == 400
    second = await emu.patch(
        b, [{"op": "add", "path": "/relations/-", "value": {"rel": PARENT, "url": emu.item_url(other)}}]
    )
    assert second.status == 400 and second.json["message"].startswith("TF201036")
    cycle = await emu.patch(
        a, [{"op": "add", "path": "/relations/-", "value": {"rel": PARENT, "url": emu.item_url(b)}}]
    )
    assert cycle.status == 400
    top = await emu.patch(a, [{"op": "add", "path": "/relations", "value": []}])
    assert top.status == 400 and "top level property" in top.json["message"]
    two = await emu.create("Task", {TITLE: "x"}, relations=[(PARENT, a), (PARENT, other)])
    assert two.status == 400


async def test_validate_only_saves_nothing(emu: Ado) -> None:
    """validateOnly=true returns the would-be item without saving it or consuming an id."""
    reply = await emu.create("Task", {TITLE: "dry"}, query="api-version=7.1&validateOnly=true")
    assert reply.status == 200 and reply.json["id"] == 0
    real = await emu.create("Task", {TITLE: "real"})
    assert real.json["id"] == 1
    assert len((await emu.state())["work_items"]) == 1


async def test_rev_test_op_and_field_update_bumps_rev(emu: Ado) -> None:
    """`test /rev` with a stale rev is 412 VS403351; a field change bumps rev."""
    item = (await emu.create("Task", {TITLE: "x"})).json["id"]
    stale = await emu.patch(item, [{"op": "test", "path": "/rev", "value": 5}])
    assert stale.status == 412 and "VS403351" in stale.json["message"]
    ok = await emu.patch(
        item,
        [
            {"op": "test", "path": "/rev", "value": 1},
            {"op": "replace", "path": "/fields/System.Title", "value": "y"},
        ],
    )
    assert ok.status == 200 and ok.json["rev"] == 2 and ok.json["fields"][TITLE] == "y"


async def test_get_items_list_fields_expand_and_limits(emu: Ado) -> None:
    """`workitems?ids=` is {count,value}, honours fields, caps at 200 ids, 404s unless errorPolicy=omit."""
    item = (await emu.create("Task", {TITLE: "x", "System.Tags": "k"})).json["id"]
    listed = await emu.request("GET", f"/backlogd/Backlogd/_apis/wit/workitems?ids={item}&fields=System.Tags")
    assert listed.json["count"] == 1 and listed.json["value"][0]["fields"] == {"System.Tags": "k"}
    both = await emu.request(
        "GET", f"/backlogd/_apis/wit/workitems?ids={item}&fields=System.Id&$expand=relations"
    )
    assert both.status == 400
    many = ",".join(str(i) for i in range(1, 202))
    over = await emu.request("GET", f"/backlogd/_apis/wit/workitems?ids={many}")
    assert over.status == 400 and "VS403474" in over.json["message"]
    missing = await emu.request("GET", f"/backlogd/_apis/wit/workitems?ids={item},99")
    assert missing.status == 404
    omitted = await emu.request("GET", f"/backlogd/_apis/wit/workitems?ids={item},99&errorPolicy=omit")
    assert omitted.status == 200 and omitted.json["value"][1] is None
    single = await emu.request("GET", f"/backlogd/Backlogd/_apis/wit/workitems/{item}")
    assert single.json["_links"]["html"]["href"].endswith(f"/backlogd/Backlogd/_workitems/edit/{item}")
    batch = await emu.request("POST", "/backlogd/_apis/wit/workitemsbatch?api-version=7.1", {"ids": [item]})
    assert batch.json["count"] == 1


async def test_creates_counted_per_tag(emu: Ado) -> None:
    """The introspection endpoint counts creates per tag, so tests can assert one item per key."""
    await emu.create("Task", {TITLE: "x", "System.Tags": "bk:1; run"})
    await emu.create("Task", {TITLE: "y", "System.Tags": "bk:2; run"})
    state = await emu.state()
    assert state["creates_by_tag"] == {"bk:1": 1, "bk:2": 1, "run": 2}
    assert state["work_items"][0]["tags"] == ["bk:1", "run"]


async def test_discovery_endpoints(emu: Ado) -> None:
    """Processes, types and per-type fields are `{count,value}` lists with the real process GUIDs."""
    processes = (await emu.request("GET", "/backlogd/_apis/process/processes")).json
    assert {p["name"]: p["id"] for p in processes["value"]}["Agile"] == "adcc42ab-9882-485e-a3ed-7678f01f66bc"
    types = (await emu.request("GET", "/backlogd/ScrumProj/_apis/wit/workitemtypes")).json
    assert "Product Backlog Item" in {t["name"] for t in types["value"]} and types["count"] == len(
        types["value"]
    )
    fields = (await emu.request("GET", "/backlogd/Backlogd/_apis/wit/workitemtypes/user%20story/fields")).json
    refs = {f["referenceName"]: f for f in fields["value"]}
    assert "Microsoft.VSTS.Scheduling.StoryPoints" in refs and refs[TITLE]["alwaysRequired"] is True


async def test_system_id_only_when_requested(emu: Ado) -> None:
    """Responses carry id/rev at top level; System.Id appears in fields only when asked for with `fields`."""
    item = (await emu.create("Task", {TITLE: "x"})).json
    assert "System.Id" not in item["fields"]
    listed = await emu.request(
        "GET", f"/backlogd/_apis/wit/workitems?ids={item['id']}&fields=System.Id,System.Rev"
    )
    assert listed.json["value"][0]["fields"] == {"System.Id": item["id"], "System.Rev": 1}
