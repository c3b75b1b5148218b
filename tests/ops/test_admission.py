"""Hole 5: admission is atomic. The waiting-queue bound is counted in the transaction that inserts the
job, so 100 simultaneous POSTs from four addresses admit exactly ``max_queued_jobs``."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from tests.ops.conftest import VISION, AppFactory


async def _post_from(url: str, source: str, n: int) -> list[int]:
    """``n`` simultaneous POSTs from the loopback address ``source`` (a client of its own)."""
    connector = aiohttp.TCPConnector(local_addr=(source, 0), limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one() -> int:
            async with session.post(url, json={"vision": VISION}) as resp:
                await resp.read()
                return resp.status

        return list(await asyncio.gather(*(one() for _ in range(n))))


async def test_100_simultaneous_posts_respect_the_queue_cap_exactly(make_client: AppFactory) -> None:
    """The probe: with one job running (its LLM calls held) and max_queued_jobs 50, 100 simultaneous
    POSTs from four addresses get exactly 50 × 202 and 50 × 429, and exactly 50 jobs wait queued."""
    client, services = await make_client(
        server={"max_queued_jobs": 50, "max_concurrent_jobs": 1, "jobs_per_client_per_minute": 1000}
    )
    services.llm_limiter.pause(3600)  # the running job holds its slot: everything else waits queued
    first = (await (await client.post("/api/jobs", json={"vision": VISION})).json())["job_id"]
    for _ in range(2000):  # until the first job holds the only slot (status running), at most 10 s
        job = await services.store.get_job(first)
        if job is not None and job.status == "running":
            break
        await asyncio.sleep(0.005)
    url = str(client.make_url("/api/jobs"))
    sources = ["127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"]
    batches = await asyncio.gather(*(_post_from(url, source, 25) for source in sources))
    statuses = [status for batch in batches for status in batch]
    assert sorted(set(statuses)) == [202, 429]
    assert statuses.count(202) == 50 and statuses.count(429) == 50
    assert len(await services.store.jobs_in(["queued"])) == 50


async def test_the_per_client_rate_is_exact_under_simultaneous_posts(make_client: AppFactory) -> None:
    """40 simultaneous POSTs from one address with jobs_per_client_per_minute 10 admit exactly 10."""
    client, services = await make_client(server={"jobs_per_client_per_minute": 10})
    services.llm_limiter.pause(3600)
    statuses: list[Any] = await asyncio.gather(
        *(client.post("/api/jobs", json={"vision": VISION}) for _ in range(40))
    )
    codes = [r.status for r in statuses]
    assert codes.count(202) == 10 and codes.count(429) == 30
    assert len(await services.store.list_jobs()) == 10
