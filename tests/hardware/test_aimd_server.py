"""AdaptiveLimiter against a real loopback fake LLM that throttles above a fixed concurrency."""

from __future__ import annotations

import asyncio
import time

from aiohttp import web
from pytest_aiohttp import AiohttpClient

from hardware.aimd import AdaptiveLimiter

CAPACITY = 4
RETRY_AFTER = 0.05
LATENCY = 0.01


class ThrottlingLlm:
    """Serves CAPACITY requests at a time; beyond that answers 429 + Retry-After and records the deadline.

    Each request carries ``X-Throttles-Seen``: how many 429s its client had already processed when
    it sent it. A request that had seen 429 number j must not arrive before deadline j; requests
    sent before the client could know about a 429 are in flight legitimately and are not counted.
    """

    def __init__(self) -> None:
        self.in_flight = 0
        self.deadlines: list[float] = []
        self.violations: list[tuple[float, float]] = []
        self.served = 0

    async def handle(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        seen = int(request.headers["X-Throttles-Seen"])
        known = max(self.deadlines[:seen], default=0.0)
        if arrived < known:
            self.violations.append((arrived, known))
        if self.in_flight >= CAPACITY:
            self.deadlines.append(arrived + RETRY_AFTER)
            return web.json_response({}, status=429, headers={"Retry-After": str(RETRY_AFTER)})
        self.in_flight += 1
        try:
            await asyncio.sleep(LATENCY)
        finally:
            self.in_flight -= 1
        self.served += 1
        return web.json_response({"choices": []})


async def test_limit_settles_near_capacity_and_never_beats_retry_after(aiohttp_client: AiohttpClient) -> None:
    """200 requests settle the limit within CAPACITY±2 and none arrives before a deadline its client knew."""
    llm = ThrottlingLlm()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", llm.handle)
    client = await aiohttp_client(app)
    limiter = AdaptiveLimiter(12, name="fake-llm")
    seen = 0

    async def request() -> None:
        nonlocal seen
        while True:
            async with limiter.slot():
                started = time.monotonic()
                headers = {"X-Throttles-Seen": str(seen)}
                async with client.post("/v1/chat/completions", json={}, headers=headers) as response:
                    await response.read()
                if response.status == 200:
                    limiter.succeeded(time.monotonic() - started)
                    return
                seen += 1
                limiter.throttled(float(response.headers["Retry-After"]))

    async with asyncio.timeout(20):
        await asyncio.gather(*(request() for _ in range(200)))
    assert llm.served == 200
    assert llm.deadlines, "the scenario must actually throttle"
    assert llm.violations == []
    assert abs(limiter.limit - CAPACITY) <= 2
    assert limiter.in_use == 0
