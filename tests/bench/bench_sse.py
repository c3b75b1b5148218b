"""Benchmark: 1,000 concurrent SSE clients on one job, on loopback.

The service runs in this process (offline provider, no upload target); the clients run in a few
separate processes so the server's RSS grows only by what it keeps per connection. Each event is
committed and published here with its publish time on CLOCK_MONOTONIC (shared by all processes on
Linux); clients stamp each arrival. Reported: publish-to-delivery latency p50/p99 over every
(event, client) pair, against the same figures measured with a single client in the same run (the
loop's floor), and the server's RSS delta ÷ connected clients.

Targets: p99 < 100 ms; < 64 KB per client. Run: ``.venv/bin/python -m tests.bench sse``.
"""

from __future__ import annotations

import asyncio
import gc
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
from aiohttp import web

from outbox.records import NewEvent
from service.composition import Services, build_services
from service.requests import JobRequest
from service.settings import Settings
from tests.web.sse_client import until
from web.app import create_app

CLIENTS = 1000
PROCESSES = 2
EVENTS = 100
INTERVAL = 0.05  # 20 events/s to 1,000 clients: 20,000 deliveries/s
P99_TARGET_MS = 100.0
KB_TARGET = 64.0


def _raise_fd_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))


def _settings(tmp: str) -> Settings:
    base = Settings()
    return base.model_copy(
        update={
            "database": base.database.model_copy(update={"path": f"{tmp}/bench.sqlite3"}),
            "azure_devops": base.azure_devops.model_copy(update={"target": "none"}),
            "progress": base.progress.model_copy(update={"heartbeat_seconds": 15.0}),
            # every bench client comes from 127.0.0.1: lift the per-client stream limit above CLIENTS
            "server": base.server.model_copy(update={"sse_connections_per_client": 10 * CLIENTS}),
        }
    )


async def _spawn_clients(url: str, count: int) -> list[asyncio.subprocess.Process]:
    per = [count // PROCESSES + (1 if i < count % PROCESSES else 0) for i in range(min(PROCESSES, count))]
    return [
        await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "tests.bench.bench_sse",
            url,
            str(n),
            stdout=asyncio.subprocess.PIPE,
            cwd=Path(__file__).parents[2],
        )
        for n in per
        if n
    ]


async def _measure(services: Services, base_url: str, clients: int, events: int) -> dict[str, float]:
    job_id = await services.jobs.submit(JobRequest(vision="Bench vision. Clients watch it."), start=False)
    url = f"{base_url}/api/progress/stream/{job_id}?lastEventId=1"
    gc.collect()
    rss_before = psutil.Process().memory_info().rss
    procs = await _spawn_clients(url, clients)
    await until(lambda: services.broadcaster.client_count(job_id) >= clients, 60)
    await asyncio.sleep(0.5)  # let every stream finish its setup
    gc.collect()
    rss_after = psutil.Process().memory_info().rss
    published: dict[int, float] = {}
    for n in range(events):
        kind = "final" if n == events - 1 else "progress"
        rows = await services.store.append_events(job_id, [NewEvent(type=kind, payload={"n": n})])
        published[rows[0].seq] = time.monotonic()
        services.broadcaster.publish(rows)
        await asyncio.sleep(INTERVAL)
    latencies: list[float] = []
    received = 0
    for proc in procs:
        out, _ = await proc.communicate()
        for seq, at in json.loads(out):
            latencies.append((at - published[seq]) * 1000)
            received += 1
    latencies.sort()
    return {
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "kb_per_client": (rss_after - rss_before) / 1024 / clients,
        "delivered": received / (clients * events),
    }


async def run() -> list[dict[str, Any]]:
    _raise_fd_limit(CLIENTS * 2 + 256)
    with tempfile.TemporaryDirectory() as tmp:
        settings = _settings(tmp)
        async with build_services(settings, {}) as services:
            runner = web.AppRunner(create_app(settings, services), access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            port = next(iter(runner.addresses))[1]
            try:
                base = f"http://127.0.0.1:{port}"
                floor = await _measure(services, base, 1, 50)
                many = await _measure(services, base, CLIENTS, EVENTS)
            finally:
                await runner.cleanup()
    return [
        _row(f"p50 delivery latency, {CLIENTS} clients", many["p50"], floor["p50"], "ms", "-", True),
        _row(
            f"p99 delivery latency, {CLIENTS} clients",
            many["p99"],
            floor["p99"],
            "ms",
            f"< {P99_TARGET_MS:.0f} ms",
            many["p99"] < P99_TARGET_MS,
        ),
        _row(
            "server memory per connected client",
            many["kb_per_client"],
            KB_TARGET,
            "KB",
            f"< {KB_TARGET:.0f} KB",
            many["kb_per_client"] < KB_TARGET,
        ),
        _row(
            "events delivered (of clients × events)",
            many["delivered"],
            1.0,
            "fraction",
            "= 1",
            many["delivered"] == 1.0,
        ),
    ]


def _row(name: str, value: float, bound: float, unit: str, target: str, ok: bool) -> dict[str, Any]:
    return {
        "name": name,
        "value": round(value, 3),
        "bound": round(bound, 3),
        "ratio": round(value / bound, 3) if bound else "",
        "unit": unit,
        "target": target,
        "ok": ok,
    }


# ----- the client side (separate processes) ----------------------------------------------------
# A bare asyncio.Protocol per connection: the clients share the machine with the server, so they
# must cost as little as possible or they, not the server, set the latency.


class _Client(asyncio.Protocol):
    def __init__(self, request: bytes, seen: list[tuple[int, float]], done: asyncio.Future[None]) -> None:
        self.request = request
        self.seen = seen
        self.done = done
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        now = time.monotonic()
        buf = self.buffer + data
        pos = 0
        while (start := buf.find(b"id: ", pos)) >= 0 and (end := buf.find(b"\r\n", start)) >= 0:
            self.seen.append((int(buf[start + 4 : end]), now))
            pos = end
        self.buffer = buf[pos:][-64:]
        if b"event: final" in buf and not self.done.done():
            self.done.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _clients(url: str, count: int) -> list[tuple[int, float]]:
    parsed = urlsplit(url)
    request = (
        f"GET {parsed.path}?{parsed.query} HTTP/1.1\r\nHost: {parsed.netloc}\r\n"
        "Accept: text/event-stream\r\n\r\n"
    ).encode()
    loop = asyncio.get_running_loop()
    seen: list[tuple[int, float]] = []
    transports = []
    waits = []
    for _ in range(count):
        done: asyncio.Future[None] = loop.create_future()
        transport, _ = await loop.create_connection(
            lambda d=done: _Client(request, seen, d),  # type: ignore[misc]
            parsed.hostname or "127.0.0.1",
            parsed.port or 80,
        )
        transports.append(transport)
        waits.append(done)
    await asyncio.gather(*waits)
    for transport in transports:
        transport.close()
    return seen


if __name__ == "__main__":
    if len(sys.argv) == 3:
        _raise_fd_limit(int(sys.argv[2]) + 256)
        print(json.dumps(asyncio.run(_clients(sys.argv[1], int(sys.argv[2])))))
    else:
        for row in asyncio.run(run()):
            print(row)
