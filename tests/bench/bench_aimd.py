"""Benchmark: AdaptiveLimiter against a fake LLM that throttles above a fixed concurrency.

The fake LLM answers after ``LATENCY`` seconds and replies 429 + Retry-After at once whenever more
than ``CAPACITY`` requests are in flight. Clients keep far more work queued than the capacity, so the
only thing standing between them and ideal throughput (``CAPACITY / LATENCY``) is the limiter.
The limiter starts at its ceiling (the default), which is far above the real capacity. Reports
sustained throughput ÷ ideal after a warm-up, the fraction of requests that drew a 429 after the
warm-up and over the whole run, and where the limit settled.

Run: ``.venv/bin/python -m tests.bench.bench_aimd``.
"""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
from aiohttp import web

from hardware.aimd import AdaptiveLimiter

CAPACITY = 6
LATENCY = 0.1
RETRY_AFTER = 0.1
WARM_UP = 3.0
MEASURE = 12.0
CLIENTS = 32
THROUGHPUT_TARGET = 0.85
THROTTLE_TARGET = 0.05
WHOLE_RUN_TARGET = 0.10  # includes the descent from CEILING, which costs one 429 burst per cut
CEILING = 16  # what the operator configured: well above what the provider really serves


class FakeLlm:
    """Counts requests in flight; over capacity it throttles instead of serving."""

    def __init__(self) -> None:
        self.in_flight = 0

    async def handle(self, request: web.Request) -> web.Response:
        if self.in_flight >= CAPACITY:
            return web.json_response(
                {"error": "rate limited"}, status=429, headers={"Retry-After": str(RETRY_AFTER)}
            )
        self.in_flight += 1
        try:
            await asyncio.sleep(LATENCY)
        finally:
            self.in_flight -= 1
        return web.json_response({"choices": [{"message": {"content": "{}"}}]})


async def _client(
    session: aiohttp.ClientSession,
    url: str,
    limiter: AdaptiveLimiter,
    end: float,
    log: list[tuple[float, int]],
) -> None:
    while time.monotonic() < end:
        async with limiter.slot():
            started = time.monotonic()
            async with session.post(url, json={"prompt": "x"}) as response:
                await response.read()
                status = response.status
                retry_after = response.headers.get("Retry-After")
            if status == 429:
                limiter.throttled(float(retry_after) if retry_after else None)
            else:
                limiter.succeeded(time.monotonic() - started)
            log.append((time.monotonic(), status))


def _throttle_row(name: str, statuses: list[int], target: float) -> dict[str, object]:
    throttled = sum(1 for status in statuses if status == 429)
    fraction = throttled / max(1, len(statuses))
    return {
        "name": name,
        "value": throttled,
        "bound": len(statuses),
        "ratio": round(fraction, 4),
        "unit": "429 responses (ratio: ÷ all responses)",
        "target": target,
        "ok": fraction < target,
    }


async def run() -> list[dict[str, object]]:
    """Run the fake LLM and the clients for WARM_UP + MEASURE seconds; return one row per measure."""
    llm = FakeLlm()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", llm.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    limiter = AdaptiveLimiter(CEILING, name="fake-llm")
    log: list[tuple[float, int]] = []
    start = time.monotonic()
    measure_from, end = start + WARM_UP, start + WARM_UP + MEASURE
    try:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session, asyncio.TaskGroup() as group:
            for _ in range(CLIENTS):
                group.create_task(_client(session, url, limiter, end, log))
    finally:
        await runner.cleanup()
    finished = time.monotonic()
    sustained = [status for at, status in log if at >= measure_from]
    throughput = sum(1 for status in sustained if status == 200) / (finished - measure_from)
    ideal = CAPACITY / LATENCY
    return [
        {
            "name": "aimd_sustained_throughput",
            "value": round(throughput, 2),
            "bound": ideal,
            "ratio": round(throughput / ideal, 3),
            "unit": "requests/s (ratio: ÷ capacity/latency)",
            "target": THROUGHPUT_TARGET,
            "ok": throughput / ideal >= THROUGHPUT_TARGET,
        },
        _throttle_row("aimd_throttled_fraction_sustained", sustained, THROTTLE_TARGET),
        _throttle_row("aimd_throttled_fraction_whole_run", [status for _, status in log], WHOLE_RUN_TARGET),
        {
            "name": "aimd_final_limit",
            "value": limiter.limit,
            "bound": CAPACITY,
            "ratio": round(limiter.limit / CAPACITY, 3),
            "unit": "concurrent requests (ratio: ÷ server capacity)",
            "target": 1.0,
            "ok": abs(limiter.limit - CAPACITY) <= 1,
        },
    ]


if __name__ == "__main__":
    for row in asyncio.run(run()):
        print(json.dumps(row, ensure_ascii=False))
