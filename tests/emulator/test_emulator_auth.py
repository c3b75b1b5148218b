"""Authentication as the service does it: Basic `:PAT`, 401 vs 203 sign-in HTML for bad tokens."""

from __future__ import annotations

import base64

from aiohttp.test_utils import TestServer

from emulator import EMULATOR_STATE
from tests.emulator.conftest import PAT, PATCH_JSON, Ado, basic

PROJECT_URL = "/backlogd/_apis/projects/Backlogd"


async def test_valid_pat_any_user_name_and_bearer_accepted(emu: Ado) -> None:
    """Basic with any user name and the PAT as password works, as does a Bearer token."""
    named = "Basic " + base64.b64encode(f"someone:{PAT}".encode()).decode()
    assert (await emu.request("GET", PROJECT_URL, headers={"Authorization": named})).status == 200
    assert (await emu.request("GET", PROJECT_URL, headers={"Authorization": f"Bearer {PAT}"})).status == 200


async def test_unknown_pat_with_suppress_is_401_empty_body(emu: Ado) -> None:
    """With X-TFS-FedAuthRedirect: Suppress an unknown PAT gets 401, empty body and WWW-Authenticate."""
    reply = await emu.request("GET", PROJECT_URL, headers={"Authorization": basic("wrong")})
    assert reply.status == 401 and reply.text == ""
    assert reply.headers["WWW-Authenticate"].startswith("Basic realm=")


async def test_unknown_pat_without_suppress_is_203_html(emu: Ado) -> None:
    """Without the suppress header a GET or POST with a bad PAT gets 203 and an HTML sign-in page."""
    emu.headers.pop("X-TFS-FedAuthRedirect")
    reply = await emu.request("GET", PROJECT_URL, headers={"Authorization": basic("wrong")})
    assert reply.status == 203 and reply.headers["Content-Type"].startswith("text/html")
    assert "Sign In" in reply.text
    emu.headers["Authorization"] = basic("wrong")
    assert (await emu.create("Task", {"System.Title": "x"})).status == 203


async def test_patch_with_bad_pat_is_401_even_without_suppress(emu: Ado) -> None:
    """PATCH is recognised as an API call: 401 rather than the sign-in page."""
    emu.headers.pop("X-TFS-FedAuthRedirect")
    reply = await emu.request(
        "PATCH",
        "/backlogd/_apis/wit/workitems/1?api-version=7.1",
        [],
        headers={"Authorization": basic("wrong"), "Content-Type": PATCH_JSON},
    )
    assert reply.status == 401


async def test_bare_pat_encoding_and_missing_header_refused(emu: Ado) -> None:
    """Base64 of the bare PAT (no colon) and a missing Authorization header are refused; nothing written."""
    bare = "Basic " + base64.b64encode(PAT.encode()).decode()
    assert (await emu.request("GET", PROJECT_URL, headers={"Authorization": bare})).status == 401
    auth = emu.headers.pop("Authorization")
    assert (await emu.create("Task", {"System.Title": "x"})).status == 401
    emu.headers["Authorization"] = auth  # the state needs the PAT too
    assert (await emu.state())["work_items"] == []


async def test_the_control_routes_refuse_anonymous_reads_and_writes(emu: Ado) -> None:
    """Without the PAT, /_emulator/state, /faults and /reset are refused and nothing changes; the human
    pages stay open on loopback; API calls are counted, knobs are not."""
    await emu.create("Task", {"System.Title": "kept"})
    auth = emu.headers.pop("Authorization")
    for method, path in (("GET", "/_emulator/state"), ("POST", "/_emulator/reset")):
        reply = await emu.request(method, path)
        assert reply.status == 401 and "work_items" not in reply.text
    assert (await emu.request("POST", "/_emulator/faults", {"error_500": 1.0})).status == 401
    assert (await emu.request("GET", "/backlogd/Backlogd/_backlogs")).status == 200
    assert (await emu.request("GET", PROJECT_URL)).status == 401
    emu.headers["Authorization"] = auth
    state = await emu.state()
    assert [w["fields"]["System.Title"] for w in state["work_items"]] == ["kept"]
    assert state["faults"]["error_500"] == 0.0
    assert state["requests_total"] == 2 and state["status_counts"] == {"200": 1, "401": 1}


async def test_the_control_routes_do_not_exist_unless_enabled(emu: Ado, emu_server: TestServer) -> None:
    """With control off (the default) even the PAT gets 404 from /_emulator/*: only tests turn it on."""
    state = emu_server.app[EMULATOR_STATE]
    state.config = state.config.model_copy(update={"control": False})
    assert (await emu.request("GET", "/_emulator/state")).status == 404
    assert (await emu.request("POST", "/_emulator/reset")).status == 404


async def test_the_human_pages_answer_to_loopback_names_only(emu: Ado) -> None:
    """A DNS-rebinding page (Host: attacker.example) cannot read the browse pages."""
    reply = await emu.request("GET", "/backlogd/Backlogd/_backlogs", headers={"Host": "attacker.example"})
    assert reply.status == 421


async def test_expired_pat_is_401_access_check_json(emu: Ado, emu_server: TestServer) -> None:
    """An expired PAT gets 401 with the AccessCheckException JSON and X-TFS-ServiceError."""
    config = emu_server.app[EMULATOR_STATE].config
    emu_server.app[EMULATOR_STATE].config = config.model_copy(update={"expired_pats": frozenset({"old"})})
    reply = await emu.request("GET", PROJECT_URL, headers={"Authorization": basic("old")})
    assert reply.status == 401 and reply.json["typeKey"] == "AccessCheckException"
    assert "expired" in reply.headers["X-TFS-ServiceError"]
