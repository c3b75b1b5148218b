"""The JSON export: the job with its vision and settings, the tree with upload states and revisions,
test plans and suites, traceability; csv and md unchanged."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from service.composition import Services
from tests.web.conftest import VISION

Client = TestClient[Any, Any]


def _walk(node: dict[str, Any]) -> list[dict[str, Any]]:
    out = [node]
    for key in ("features", "stories", "tasks", "test_cases"):
        for child in node.get(key, []):
            out += _walk(child)
    return out


async def test_json_export_holds_job_settings_test_plans_and_traceability(
    client: Client, services: Services
) -> None:
    """After an uploaded job the JSON export names the job (id, title, status, vision, the options it
    ran with, no secret), gives every item its upload state, work item id and revision, lists the test
    plans and suites with their work items, and maps every vision sentence to the stories citing it."""
    resp = await client.post("/api/jobs", json={"vision": VISION, "limits": {"max_epics": 1}})
    job_id = (await resp.json())["job_id"]
    assert (await services.jobs.wait(job_id)).status == "completed"
    doc = await (await client.get(f"/api/jobs/{job_id}/export", params={"format": "json"})).json()

    assert doc["format"] == "backlogd.export/2"
    job = doc["job"]
    assert (job["id"], job["title"], job["status"]) == (job_id, "Bike shop", "completed")
    assert "Customers book repairs online" in job["vision"]["vision"]
    assert job["settings"]["limits"]["max_epics"] == 1 and job["settings"]["target"] == "emulator"
    assert "pat" not in job["settings"] and job["settings"]["pat_source"] == "settings"

    nodes = [n for epic in doc["epics"] for n in _walk(epic)]
    assert nodes and all(n["upload"]["state"] == "uploaded" for n in nodes)
    assert all(n["upload"]["ado_id"] > 0 and n["upload"]["rev"] >= 1 for n in nodes)
    features = [n for n in nodes if n["type"] == "feature"]
    stories = [n for n in nodes if n["type"] == "story"]
    assert {p["for_id"] for p in doc["test_plans"]} == {f["id"] for f in features}
    assert {s["for_id"] for s in doc["test_suites"]} == {s["id"] for s in stories}
    assert all(q["upload"]["ado_id"] for q in doc["test_plans"] + doc["test_suites"])

    trace = doc["traceability"]
    sentence_ids = [s["id"] for s in trace["sentences"]]
    assert sentence_ids[:3] == ["S1", "S2", "S3"]
    assert trace["sentences"][0]["text"] == "Customers book repairs online."
    for sentence in trace["sentences"]:
        for story_id in sentence["covered_by"]:
            story = next(s for s in stories if s["id"] == story_id)
            assert sentence["id"] in story["sources"]
    assert trace["uncovered"] == [s["id"] for s in trace["sentences"] if not s["covered_by"]]
    assert any(s["covered_by"] for s in trace["sentences"])

    csv = await (await client.get(f"/api/jobs/{job_id}/export", params={"format": "csv"})).text()
    md = await (await client.get(f"/api/jobs/{job_id}/export", params={"format": "md"})).text()
    assert csv.startswith("\ufeffID,Work Item Type,Title 1") and md.startswith("# Bike shop")
