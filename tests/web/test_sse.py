"""SSE over a real loopback connection: ids, replay after Last-Event-ID, heartbeats, final and close,
204 for a finished job, many clients, a stalled client, and a restart of the service mid-job."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient, TestServer

from emulator.config import EmulatorConfig, FaultConfig
from emulator.server import serve
from outbox.records import NewEvent
from service.composition import Services, build_services
from service.requests import JobRequest
from tests.web.conftest import VISION, make_settings
from tests.web.sse_client import Seen, follow, read_stream, until
from web.app import create_app

Client = TestClient[Any, Any]


def _consecutive(ids: list[int]) -> bool:
    return ids == list(range(1, len(ids) + 1))


def _final_seq(seen: Seen) -> int:
    """The seq of the last ``final`` (a debounced progress tick may still follow it)."""
    return max(f.id for f in seen.frames if f.event == "final" and f.id is not None)


async def test_a_stream_replays_then_goes_live_and_ends_after_final(
    client: Client, services: Services
) -> None:
    """One connection gets every event once, ids strictly increasing from 1, a retry hint, final, EOF."""
    job_id = await services.jobs.submit(JobRequest(vision=VISION, include_qa=False), start=False)
    seen = Seen()
    async with client.get(f"/api/progress/stream/{job_id}") as resp:
        assert resp.status == 200 and resp.content_type == "text/event-stream"
        services.jobs.start(job_id)
        await read_stream(resp, seen)  # returns only when the server closes the stream
    ids = seen.ids()
    assert _consecutive(ids)
    assert seen.retry == 100
    assert seen.frames[-1].event == "final" and seen.frames[-1].data["status"] == "completed"
    types = {f.event for f in seen.frames}
    assert {"stage", "item", "upload", "progress", "final"} <= types
    progress = [f.data for f in seen.frames if f.event == "progress"]
    assert all(
        p["etag"] == f'"{f.id}"'
        for p, f in zip(progress, [f for f in seen.frames if f.event == "progress"], strict=True)
    )
    percents = [p["progress"] for p in progress]
    assert percents == sorted(percents)  # monotonic
    for key in ("job_id", "status", "current_action", "current_agent", "counts", "timestamp"):
        assert key in progress[-1]


async def test_resume_with_last_event_id_is_exactly_once(client: Client, services: Services) -> None:
    """A client that disconnects mid-job and reconnects with Last-Event-ID gets each event exactly once."""
    assert services.emulator is not None
    services.emulator.state.set_faults(FaultConfig(latency_seconds=0.005, routes=frozenset({"any"})))
    job_id = await services.jobs.submit(JobRequest(vision=VISION, include_qa=False))
    seen = Seen()
    async with client.get(f"/api/progress/stream/{job_id}") as resp:
        await read_stream(resp, seen, limit=15)  # then drop the connection mid-job
    assert len(seen.frames) == 15
    connects = await follow(client.session, str(client.make_url(f"/api/progress/stream/{job_id}")), seen)
    assert connects >= 1
    assert _consecutive(seen.ids())
    assert _final_seq(seen) >= len(seen.frames) - 1


async def test_finished_job_replays_what_was_missed_then_204(client: Client, services: Services) -> None:
    """A reconnect to a finished job replays only the missed events and closes; nothing missed is a 204."""
    job_id = await services.jobs.submit(JobRequest(vision=VISION, include_qa=False))
    job = await services.jobs.wait(job_id)
    url = f"/api/progress/stream/{job_id}"
    seen = Seen()
    async with client.get(url, headers={"Last-Event-ID": str(job.last_seq - 3)}) as resp:
        assert resp.status == 200
        await read_stream(resp, seen)
    assert seen.ids() == [job.last_seq - 2, job.last_seq - 1, job.last_seq]
    done = await client.get(url, headers={"Last-Event-ID": str(job.last_seq)})
    assert done.status == 204
    first = await client.get(f"{url}?lastEventId={job.last_seq}")
    assert first.status == 204


async def test_heartbeats_keep_an_idle_stream_open(client: Client, services: Services) -> None:
    """While a job is idle (awaiting a manual upload) the stream stays open and sends heartbeat comments."""
    job_id = await services.jobs.submit(JobRequest(vision=VISION, include_qa=False, upload_mode="manual"))
    job = await services.jobs.wait(job_id)
    assert job.status == "awaiting_upload"
    seen = Seen()
    async with client.get(
        f"/api/progress/stream/{job_id}", headers={"Last-Event-ID": str(job.last_seq)}
    ) as resp:
        assert resp.status == 200
        try:
            async with asyncio.timeout(0.2):  # ten heartbeat intervals of 20 ms
                await read_stream(resp, seen)
        except TimeoutError:
            pass
    assert seen.frames == []
    assert seen.comments >= 3


async def test_streaming_can_be_disabled(tmp_path: Path, aiohttp_client: Any) -> None:
    """With progress.enable_sse false the stream is a JSON 404 and polling still works."""
    settings = make_settings(tmp_path, progress={"enable_sse": False}, azure_devops={"target": "none"})
    async with build_services(settings, {}) as services:
        client = await aiohttp_client(create_app(settings, services))
        job_id = await services.jobs.submit(JobRequest(vision=VISION, include_qa=False))
        resp = await client.get(f"/api/progress/stream/{job_id}")
        assert resp.status == 404 and "enable_sse" in (await resp.json())["error"]["message"]
        await services.jobs.wait(job_id)
        assert (await client.get(f"/api/jobs/{job_id}/progress")).status == 200


async def test_fifty_clients_each_receive_every_event(tmp_path: Path, aiohttp_client: Any) -> None:
    """Fifty concurrent clients on one job each receive every event, in order, exactly once."""
    settings = make_settings(tmp_path, progress={"heartbeat_seconds": 0.5, "client_queue_size": 4096})
    async with build_services(settings, {}) as services:
        client = await aiohttp_client(create_app(settings, services))
        job_id = await services.jobs.submit(JobRequest(vision=VISION), start=False)
        url = str(client.make_url(f"/api/progress/stream/{job_id}"))
        seens = [Seen() for _ in range(50)]
        followers = [asyncio.create_task(follow(client.session, url, s)) for s in seens]
        await until(lambda: services.broadcaster.client_count(job_id) >= 50)
        services.jobs.start(job_id)
        connects = await asyncio.gather(*followers)
        job = await services.jobs.wait(job_id)
    assert all(c >= 1 for c in connects)
    final = _final_seq(seens[0])
    assert final > 50 and job.status == "completed"
    for seen in seens:
        assert seen.ids()[:final] == list(range(1, final + 1))


async def _stalled_reader(port: int, job_id: str) -> socket.socket:
    """A client that sends the request and never reads (a tiny receive buffer fills at once)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    request = f"GET /api/progress/stream/{job_id} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    await asyncio.get_running_loop().sock_sendall(sock, request)
    return sock


async def test_a_stalled_client_is_dropped_without_delaying_others(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    """A client that never reads is dropped when its queue fills; a reading client gets every event."""
    settings = make_settings(
        tmp_path, progress={"heartbeat_seconds": 1.0, "client_queue_size": 8}, azure_devops={"target": "none"}
    )
    async with build_services(settings, {}) as services:
        client = await aiohttp_client(create_app(settings, services))
        job_id = await services.jobs.submit(JobRequest(vision=VISION), start=False)
        stalled = await _stalled_reader(client.port, job_id)
        try:
            await until(lambda: services.broadcaster.client_count(job_id) >= 1)
            seen = Seen()
            resp = await client.get(f"/api/progress/stream/{job_id}")
            reader = asyncio.create_task(read_stream(resp, seen, limit=201))
            await until(lambda: services.broadcaster.client_count(job_id) >= 2)
            blob = "x" * 32_768  # 200 × 32 KB: far more than the stalled socket's buffers hold
            for n in range(200):
                services.broadcaster.publish(
                    await services.store.append_events(
                        job_id, [NewEvent(type="progress", payload={"n": n, "pad": blob})]
                    )
                )
                # the reading client keeps up (a reader that falls a queue behind is dropped too, by
                # design): on a busy machine give it the turn it needs, never the stalled one
                await until(lambda n=n: len(seen.ids()) >= n - 2, limit=20)
            async with asyncio.timeout(20):
                await reader
            assert seen.ids()[-1] == 201 and _consecutive(seen.ids())
            assert services.broadcaster.client_count(job_id) == 1  # the stalled one was dropped
            resp.close()
        finally:
            stalled.close()


async def test_clients_reconnect_across_a_restart_mid_job(tmp_path: Path) -> None:
    """Shutdown mid-job sends each client `shutdown`; after a restart on the same database the job
    resumes and the reconnecting clients end with every event exactly once."""
    emulator = await serve(
        EmulatorConfig(faults=FaultConfig(latency_seconds=0.01, routes=frozenset({"any"})))
    )
    settings = make_settings(
        tmp_path,
        azure_devops={"target": "ado", "organization_url": emulator.url},
        progress={"heartbeat_seconds": 0.5, "client_queue_size": 4096},
    )
    env = {"AZURE_DEVOPS_PAT": "test-pat"}
    seens = [Seen() for _ in range(3)]
    try:
        async with aiohttp.ClientSession() as session:
            async with build_services(settings, env) as first:
                server = TestServer(create_app(settings, first))
                await server.start_server()
                job_id = await first.jobs.submit(JobRequest(vision=VISION, include_qa=False))
                url = str(server.make_url(f"/api/progress/stream/{job_id}"))
                readers = [asyncio.create_task(_read_once(session, url, s)) for s in seens]
                await until(lambda: all(len(s.frames) > 20 for s in seens), 10)
                await server.close()  # on_shutdown: every stream gets `shutdown` and ends
                await asyncio.gather(*readers)
            assert all(s.frames[-1].event == "shutdown" for s in seens)
            before = await _status(settings, env, job_id)
            assert before == "running"  # interrupted, left resumable
            async with build_services(settings, env) as second:
                assert await second.jobs.resume_unfinished() == [job_id]
                server = TestServer(create_app(settings, second))
                await server.start_server()
                url = str(server.make_url(f"/api/progress/stream/{job_id}"))
                await asyncio.gather(*(follow(session, url, s) for s in seens))
                job = await second.jobs.wait(job_id)
                await server.close()
        assert job.status == "completed"
        for seen in seens:
            final = _final_seq(seen)
            assert seen.ids()[:final] == list(range(1, final + 1))
    finally:
        await emulator.close()


async def _read_once(session: aiohttp.ClientSession, url: str, seen: Seen) -> None:
    async with session.get(url) as resp:
        await read_stream(resp, seen)


async def _status(settings: Any, env: dict[str, str], job_id: str) -> str:
    from outbox.store import Store

    async with Store.open(settings.database.path) as store:
        job = await store.get_job(job_id)
    assert job is not None
    return job.status
