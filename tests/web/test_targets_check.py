"""``POST /api/targets/check``: the pre-flight over HTTP, reporting every problem with its fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from service.settings import Settings
from tests.web.conftest import make_settings

ALLOWED = "http://127.0.0.1:9/org"  # allowed by the operator, and nothing listens there


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """The embedded emulator as the target, a server PAT, and one more organization jobs may name."""
    return make_settings(tmp_path, azure_devops={"allowed_organizations": (ALLOWED,)})


async def test_check_of_the_embedded_emulator_is_all_well(client: TestClient[Any, Any]) -> None:
    """The default target (the embedded emulator) passes: ok, no problems, what was checked listed."""
    resp = await client.post("/api/targets/check", json={})
    assert resp.status == 200
    report = await resp.json()
    assert report["ok"] is True and report["problems"] == [] and report["process"] == "Agile"
    assert any("Test Plans access" in line for line in report["passed"])


async def test_check_reports_an_unreachable_target_and_never_echoes_the_pat(
    client: TestClient[Any, Any],
) -> None:
    """An unreachable organization checked with a PAT in the body is fatal; the PAT never comes back."""
    body = {
        "azure_devops": {"target": "ado", "organization_url": ALLOWED, "pat": "secret-4711"},
        "include_qa": False,
    }
    resp = await client.post("/api/targets/check", json=body)
    text = await resp.text()
    report = await resp.json()
    assert resp.status == 200 and report["fatal"] is True
    assert report["problems"][0]["code"] == "connection" and "secret-4711" not in text


async def test_check_rejects_unknown_fields(client: TestClient[Any, Any]) -> None:
    """A misspelt field is a 400 naming it, like every other endpoint."""
    resp = await client.post("/api/targets/check", json={"azure_devop": {}})
    assert resp.status == 400
    assert (await resp.json())["error"]["details"][0]["field"] == "azure_devop"


async def test_check_refuses_an_organization_the_operator_did_not_allow(client: TestClient[Any, Any]) -> None:
    """Checking an organization outside azure_devops.allowed_organizations is a 400 naming that setting
    (the check would otherwise probe, with whatever PAT, any URL a caller names)."""
    body = {"azure_devops": {"target": "ado", "organization_url": "https://evil.example/org", "pat": "x"}}
    resp = await client.post("/api/targets/check", json=body)
    assert resp.status == 400
    assert "allowed_organizations" in (await resp.text())


async def test_check_of_another_allowed_organization_never_uses_the_server_pat(
    client: TestClient[Any, Any],
) -> None:
    """An allowed organization that is not the configured one is checked only with a PAT sent along: without
    one the request is refused, so the server's PAT is never probed against it."""
    body = {"azure_devops": {"target": "ado", "organization_url": ALLOWED}}
    resp = await client.post("/api/targets/check", json=body)
    assert resp.status == 400
    assert "azure_devops.pat" in (await resp.text())
