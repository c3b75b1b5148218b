"""GET /api/hardware: what `backlogd hardware` prints, plus the live adaptive limits."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient


async def test_hardware_reports_the_probe_the_sizing_and_the_live_limits(
    client: TestClient[Any, Any],
) -> None:
    """The report names the effective CPUs, memory limit, tier and per-stage budgets, and the LLM
    limiter's current concurrency limit next to its ceiling."""
    resp = await client.get("/api/hardware")
    assert resp.status == 200
    body = await resp.json()
    assert body["effective_cpus"] > 0 and "memory_limit_bytes" in body
    assert body["tier"] in ("minimal", "small", "medium", "large", "xlarge")
    assert set(body["budgets"]) == {"epics", "features", "stories", "tasks", "test_cases"}
    llm = body["adaptive_limits"]["llm"]
    assert 1 <= llm["limit"] <= llm["ceiling"]
