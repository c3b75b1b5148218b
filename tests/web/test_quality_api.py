"""``GET /api/jobs/{id}/quality`` and ``POST /api/vision/advice`` over a real app on loopback."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from service.composition import Services
from tests.web.conftest import VISION

Client = TestClient[Any, Any]


async def test_quality_is_served_once_the_job_has_generated(client: Client, services: Services) -> None:
    """A finished job's quality lists every metric with its definition, value, target and verdict."""
    resp = await client.post("/api/jobs", json={"vision": VISION, "azure_devops": {"target": "none"}})
    job_id = (await resp.json())["job_id"]
    await services.jobs.wait(job_id)
    resp = await client.get(f"/api/jobs/{job_id}/quality")
    assert resp.status == 200
    body = await resp.json()
    assert body["available"] is True and body["job_id"] == job_id
    keys = [m["key"] for m in body["quality"]["metrics"]]
    assert keys[:2] == ["cut_off_titles", "distinct_story_titles"] and "coverage" in keys and len(keys) == 11
    assert all(m["definition"] and isinstance(m["ok"], bool) for m in body["quality"]["metrics"])
    assert body["quality"]["line"].startswith("quality: ")
    job = await (await client.get(f"/api/jobs/{job_id}")).json()
    assert job["metadata"]["quality"] == body["quality"]


async def test_quality_of_an_unknown_job_is_404(client: Client) -> None:
    """An unknown job id answers 404 with the JSON error body."""
    resp = await client.get("/api/jobs/00000000-0000-0000-0000-000000000000/quality")
    assert resp.status == 404 and "error" in await resp.json()


async def test_advice_names_what_a_vision_lacks(client: Client) -> None:
    """Vague free text gets all three kinds of advice; a structured vision with users and metrics none."""
    resp = await client.post("/api/vision/advice", json={"vision": "A seamless experience. It is great."})
    assert resp.status == 200
    codes = [a["code"] for a in (await resp.json())["advice"]]
    assert codes == ["no_target_users", "no_success_metric", "vague_sentence", "vague_sentence"]
    good = {
        "vision": "Clinics book patients online.",
        "target_users": ["Patients"],
        "key_features": ["Online booking with reminders"],
        "success_metrics": ["No-show rate below 5%"],
    }
    resp = await client.post("/api/vision/advice", json={"vision": good})
    assert (await resp.json())["advice"] == []


async def test_advice_rejects_a_body_that_is_not_a_vision(client: Client) -> None:
    """Invalid JSON and an empty vision are 400s with the error body, never a 500."""
    resp = await client.post(
        "/api/vision/advice", data=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    resp = await client.post("/api/vision/advice", json={"vision": "   "})
    assert resp.status == 400 and (await resp.json())["error"]["message"]


async def test_a_list_intro_is_not_advice(client: Client) -> None:
    """'Success means:' introduces the measurable items after it: it is not called too vague to cite."""
    vision = "Drivers log repairs in the app.\n\nSuccess means:\n\n- breakdowns down 30% in a year"
    resp = await client.post("/api/vision/advice", json={"vision": vision})
    assert resp.status == 200
    assert [a for a in (await resp.json())["advice"] if a["code"] == "vague_sentence"] == []
