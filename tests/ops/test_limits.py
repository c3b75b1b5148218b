"""Limits: body size and vision size (413 naming the limit), jobs per client per minute, waiting jobs,
SSE streams per client and login attempts (429 + Retry-After), and writes while draining (503)."""

from __future__ import annotations

from typing import Any

from service.requests import JobRequest
from tests.ops.conftest import TOKEN, VISION, AppFactory, Clock
from web.keys import DRAINING


async def _error(resp: Any, status: int, code: str) -> dict[str, Any]:
    assert resp.status == status, (resp.status, await resp.text())
    body = await resp.json()
    assert body["error"]["code"] == code, body
    return dict(body["error"])


async def test_a_body_over_the_limit_is_413_before_it_is_read(make_client: AppFactory) -> None:
    """A body larger than ``max_body_bytes`` gets 413 body_too_large naming the limit; smaller ones pass."""
    client, _ = await make_client(server={"max_body_bytes": 2000})
    error = await _error(await client.post("/api/jobs", data=b"x" * 5000), 413, "body_too_large")
    assert "2000" in error["message"] and error["details"][0]["limit"] == 2000
    ok = await client.post("/api/jobs", json={"vision": VISION})
    assert ok.status == 202


async def test_a_vision_over_the_limit_is_413_with_the_limit(make_client: AppFactory) -> None:
    """A vision over ``max_vision_bytes`` (text or structured) gets 413 vision_too_large; no job is made."""
    client, services = await make_client(server={"max_vision_bytes": 300})
    big = VISION + " Riders rent bikes." * 30
    error = await _error(await client.post("/api/jobs", json={"vision": big}), 413, "vision_too_large")
    assert error["details"][0] == {
        "field": "vision",
        "message": error["message"],
        "limit": 300,
        "size": len(big.encode()),
    }
    structured = {"vision": {"title": "Bikes", "vision": big}}
    await _error(await client.post("/api/jobs", json=structured), 413, "vision_too_large")
    assert await services.store.list_jobs() == []


async def test_jobs_per_client_per_minute_is_429_with_retry_after(
    make_client: AppFactory, clock: Clock
) -> None:
    """Past ``jobs_per_client_per_minute`` a client gets 429 with the seconds until its oldest job leaves
    the window; once the window moves on it may submit again."""
    client, _ = await make_client(server={"jobs_per_client_per_minute": 2})
    for _ in range(2):
        assert (await client.post("/api/jobs", json={"vision": VISION})).status == 202
        clock.now += 10
    refused = await client.post("/api/jobs", json={"vision": VISION})
    await _error(refused, 429, "too_many_requests")
    assert refused.headers["Retry-After"] == "40"  # the first job was 20 s ago
    clock.now += 40
    assert (await client.post("/api/jobs", json={"vision": VISION})).status == 202


async def test_waiting_jobs_beyond_the_queue_bound_are_429(make_client: AppFactory) -> None:
    """Jobs past ``max_concurrent_jobs`` wait queued; past ``max_queued_jobs`` waiting, POST is 429."""
    client, services = await make_client(server={"max_concurrent_jobs": 1, "max_queued_jobs": 1})
    first = await services.jobs.submit(
        JobRequest(vision=VISION), start=False
    )  # queued, not started: it holds the queue
    assert first
    refused = await client.post("/api/jobs", json={"vision": VISION})
    error = await _error(refused, 429, "too_many_jobs")
    assert int(refused.headers["Retry-After"]) > 0 and error["details"][0]["limit"] == 1
    services.jobs.start(first)
    await services.jobs.wait(first)
    assert (await client.post("/api/jobs", json={"vision": VISION})).status == 202


async def test_sse_streams_per_client_are_429_with_retry_after(make_client: AppFactory) -> None:
    """A client holding ``sse_connections_per_client`` streams gets 429 for one more; once a stream ends
    (here: the job is cancelled, its streams get ``final``) the client may open another."""
    client, services = await make_client(
        server={"sse_connections_per_client": 2}, azure_devops={"target": "emulator", "upload_mode": "manual"}
    )
    job_id = (await (await client.post("/api/jobs", json={"vision": VISION})).json())["job_id"]
    await services.jobs.wait(job_id)  # awaiting_upload: not terminal, so streams stay open
    streams = [await client.get(f"/api/progress/stream/{job_id}") for _ in range(2)]
    assert all(s.status == 200 for s in streams)
    refused = await client.get(f"/api/progress/stream/{job_id}")
    error = await _error(refused, 429, "too_many_streams")
    assert int(refused.headers["Retry-After"]) >= 1 and error["details"][0]["limit"] == 2
    assert (await client.delete(f"/api/jobs/{job_id}")).status == 200
    for stream in streams:
        assert "event: final" in await stream.text()  # the server ended it
    again = await client.get(f"/api/progress/stream/{job_id}?lastEventId=0")
    assert again.status == 200 and "event: final" in await again.text()


async def test_login_attempts_are_limited(make_client: AppFactory) -> None:
    """Ten login attempts per client per minute; the eleventh is 429 even with the right token."""
    client, _ = await make_client(token=TOKEN)
    for _ in range(10):
        assert (await client.post("/api/session", json={"token": "guess-guess-guess"})).status == 401
    refused = await client.post("/api/session", json={"token": TOKEN})
    await _error(refused, 429, "too_many_requests")
    assert "Retry-After" in refused.headers


async def test_writes_while_draining_are_503_with_retry_after(make_client: AppFactory) -> None:
    """Once shutdown begins, POST /api/jobs (and any other POST) is 503 with Retry-After; reads still work."""
    client, services = await make_client()
    client.app[DRAINING].set()
    refused = await client.post("/api/jobs", json={"vision": VISION})
    await _error(refused, 503, "shutting_down")
    assert int(refused.headers["Retry-After"]) >= 1
    assert (await client.get("/api/jobs")).status == 200
    assert (await client.get("/readyz")).status == 503
    assert await services.store.list_jobs() == []
