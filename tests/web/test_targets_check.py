"""``POST /api/targets/check``: the pre-flight over HTTP, reporting every problem with its fix."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient


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
        "azure_devops": {"target": "ado", "organization_url": "http://127.0.0.1:9/org", "pat": "secret-4711"},
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
