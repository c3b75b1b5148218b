"""Human-facing pages and the standalone server helper."""

from __future__ import annotations

import aiohttp

from emulator import EmulatorConfig
from emulator.server import serve
from tests.emulator.conftest import PAT, Ado, basic


async def test_edit_page_shows_item_with_parent_and_children(emu: Ado) -> None:
    """The work item page shows type, title, state, description HTML and parent/children links."""
    parent = (await emu.create("Feature", {"System.Title": "Payments"})).json["id"]
    rel = ("System.LinkTypes.Hierarchy-Reverse", parent)
    fields = {"System.Title": "Pay <by> card", "System.Description": "<p>Use <b>cards</b></p>"}
    child = (await emu.create("User Story", fields, relations=[rel])).json
    page = await emu.request("GET", child["_links"]["html"]["href"])
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "User Story" in page.text and "Pay &lt;by&gt; card" in page.text
    assert "<p>Use <b>cards</b></p>" in page.text and "New" in page.text
    assert f"/_workitems/edit/{parent}" in page.text
    parent_page = await emu.request("GET", f"/backlogd/Backlogd/_workitems/edit/{parent}")
    assert f"/_workitems/edit/{child['id']}" in parent_page.text


async def test_edit_page_shows_identity_fields_by_display_name(emu: Ado) -> None:
    """Identity fields (System.CreatedBy, System.ChangedBy) show the person's display name, never the
    REST object printed as a raw dict."""
    created = (await emu.create("Epic", {"System.Title": "Identity"})).json
    page = await emu.request("GET", created["_links"]["html"]["href"])
    assert "Backlogd Emulator &lt;emulator@backlogd.invalid&gt;" in page.text
    assert "displayName" not in page.text and "{" not in page.text.split("<table>")[1]


async def test_backlog_tree_nests_by_hierarchy(emu: Ado) -> None:
    """The backlog page nests children under their parents."""
    epic = (await emu.create("Epic", {"System.Title": "E"})).json["id"]
    await emu.create(
        "Feature", {"System.Title": "F"}, relations=[("System.LinkTypes.Hierarchy-Reverse", epic)]
    )
    page = await emu.request("GET", "/backlogd/Backlogd/_backlogs")
    assert page.status == 200
    assert page.text.index("Epic 1: E") < page.text.index(
        "<ul><li><a href='/backlogd/Backlogd/_workitems/edit/2'>"
    )
    assert (await emu.request("GET", "/")).status == 200


async def test_serve_binds_a_free_port_and_closes() -> None:
    """serve() starts a real listener on a free port whose URL accepts API calls, and close() stops it."""
    running = await serve(EmulatorConfig(pats=frozenset({PAT})), "127.0.0.1", 0)
    try:
        assert running.port > 0
        async with (
            aiohttp.ClientSession(headers={"Authorization": basic(PAT)}) as session,
            session.get(f"{running.url}/_apis/projects/Backlogd") as resp,
        ):
            assert resp.status == 200
        assert running.state.requests_total == 1
    finally:
        await running.close()
