"""Benchmark: a provider with a hidden concurrency cap, for each way it can say "come back later".

The provider serves ``CAP`` requests at a time, ``LATENCY`` each, and answers 429 to the next one with
``Retry-After: 1``, ``Retry-After: 0`` or no header at all (vLLM, Ollama, most proxies). Our limiter
starts from a ceiling of 32, far above the cap. For each behaviour:

- ``capped_<ra>_throughput``: 32 clients through the AdaptiveLimiter for ``WARM_UP`` + ``MEASURE``
  seconds; sustained successes per second ÷ ideal (``CAP`` ÷ the latency the server really served,
  at least ``LATENCY``), target ≥ 0.85;
- ``capped_<ra>_throttled``: 429s ÷ all responses after the warm-up, target < 5% (and the whole run);
- ``capped_<ra>_pipeline``: a 4x5x8 job (345 calls) through the real runner against the fake
  OpenAI-compatible server with the same cap; wall ÷ the job's optimal makespan at concurrency
  ``CAP`` and at the latency the server really served (mean of the calls' measured latency), ≤ 1.3.

Run: ``.venv/bin/python -m tests.bench capped``.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from hardware.aimd import SLOW_START_INITIAL, AdaptiveLimiter
from service import logs
from stages.providers.openai import parse_retry_after
from tests.bench.bench_pipeline import LARGE_SHAPE, bench_settings, ideal_makespan
from tests.fakes.llm_process import start_fake, stop_fake

CAP = 6
LATENCY = 0.1
CEILING = 32
CLIENTS = 32
WARM_UP = 3.0
MEASURE = 12.0
BEHAVIOURS: tuple[tuple[str, float | None], ...] = (("ra1", 1.0), ("ra0", 0.0), ("bare", None))


class CappedServer:
    """Counts requests in flight; over the cap it answers 429 at once instead of serving."""

    def __init__(self, retry_after: float | None) -> None:
        self.in_flight = 0
        self.retry_after = retry_after

    async def handle(self, request: web.Request) -> web.Response:
        if self.in_flight >= CAP:
            headers = {} if self.retry_after is None else {"Retry-After": f"{self.retry_after:g}"}
            return web.json_response({"error": {"message": "rate limited"}}, status=429, headers=headers)
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
    log: list[tuple[float, int, float]],
) -> None:
    while time.monotonic() < end:
        async with limiter.slot():
            started = time.monotonic()
            async with session.post(url, json={"prompt": "x"}) as response:
                await response.read()
                status, headers = response.status, response.headers
            took = time.monotonic() - started
            if status == 429:
                limiter.throttled(parse_retry_after(headers, time.time()))
            else:
                limiter.succeeded(took)
            log.append((time.monotonic(), status, took))


async def throughput(label: str, retry_after: float | None) -> list[dict[str, Any]]:
    server = CappedServer(retry_after)
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1/chat/completions"
    limiter = AdaptiveLimiter(CEILING, initial=SLOW_START_INITIAL, name=label)
    log: list[tuple[float, int, float]] = []
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
    sustained = [status for at, status, _ in log if at >= measure_from]
    rate = sum(1 for s in sustained if s == 200) / (finished - measure_from)
    served = [took for at, status, took in log if at >= measure_from and status == 200]
    latency = sum(served) / max(1, len(served))  # what the server really took on this (shared) machine
    ideal = CAP / max(latency, LATENCY)
    late = sum(1 for s in sustained if s == 429) / max(1, len(sustained))
    overall = sum(1 for _, s, _ in log if s == 429) / max(1, len(log))
    return [
        {
            "name": f"capped_{label}_throughput",
            "value": round(rate, 2),
            "bound": round(ideal, 2),
            "ratio": round(rate / ideal, 3),
            "unit": f"requests/s after {WARM_UP:g} s, cap {CAP} at {LATENCY * 1000:.0f} ms, ceiling {CEILING}"
            f" (final limit {limiter.limit}; ratio: ÷ cap/latency at the {latency * 1000:.0f} ms served)",
            "target": 0.85,
            "ok": rate / ideal >= 0.85,
        },
        {
            "name": f"capped_{label}_throttled",
            "value": round(late, 4),
            "bound": round(overall, 4),
            "ratio": round(late, 4),
            "unit": f"429s ÷ responses after the warm-up (bound: the whole run, {len(log)} responses)",
            "target": 0.05,
            "ok": late < 0.05 and overall < 0.20,
        },
    ]


async def pipeline(root: Path, label: str, retry_after: float | None) -> dict[str, Any]:
    import yaml

    from service.composition import build_services
    from service.requests import JobRequest
    from tests.bench.bench_pipeline import VISION

    args = ["--throttle-above", str(CAP)]
    args += ["--no-retry-after"] if retry_after is None else ["--retry-after", f"{retry_after:g}"]
    proc, url = await start_fake(LATENCY, *args)
    try:
        base = bench_settings(root, "openai", url, LARGE_SHAPE)
        settings = base.model_copy(update={"llm": base.llm.model_copy(update={"max_concurrency": CEILING})})
        vision = yaml.safe_load(VISION.read_text(encoding="utf-8"))
        async with build_services(settings, {}, with_relay=False) as services:
            started = time.monotonic()
            job_id = await services.jobs.submit(JobRequest(vision=vision))
            job = await services.jobs.wait(job_id)
            wall = time.monotonic() - started
            calls = await services.store.calls(job_id)
    finally:
        stats = await stop_fake(proc)
    done = [c for c in calls if c.status == "done"]
    served = sum(c.latency_ms for c in done) / max(1, len(done)) / 1000
    bound = ideal_makespan(LARGE_SHAPE, CAP, served)
    requests, throttled = stats.get("requests", 0), stats.get("throttled", 0)
    return {
        "name": f"capped_{label}_pipeline",
        "value": round(wall, 3),
        "bound": round(bound, 3),
        "ratio": round(wall / bound, 3),
        "unit": f"s for 4x5x8 = {len(done)} calls ({job.status}), {requests} requests of which {throttled}"
        f" throttled (ratio: ÷ optimal makespan at concurrency {CAP} and {served * 1000:.0f} ms served)",
        "target": 1.3,
        "ok": job.status == "completed" and wall / bound <= 1.3,
    }


async def run() -> list[dict[str, Any]]:
    logs.configure("warning", "console")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="bench-capped-") as tmp:
        for label, retry_after in BEHAVIOURS:
            rows += await throughput(label, retry_after)
            rows.append(await pipeline(Path(tmp) / label, label, retry_after))
    return rows


if __name__ == "__main__":
    for row in asyncio.run(run()):
        print(json.dumps(row, ensure_ascii=False))
