"""The database going away: the instance turns unready, backs off, and resumes without losing or
repeating a committed call once the database accepts connections again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import asyncpg

from service.composition import build_services
from service.requests import JobRequest
from service.settings import Settings
from tests.conftest import VISION
from tests.pgdb import SERVER
from web.health import readiness


@asynccontextmanager
async def _outage(pg_url: str) -> AsyncIterator[None]:
    """The database refuses new connections and every open one is cut (as in a restart), then returns."""
    name = pg_url.rsplit("/", 1)[1]
    admin = await asyncpg.connect(f"{SERVER}/postgres")
    try:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", name)
        try:
            yield
        finally:
            await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
    finally:
        await admin.close()


async def test_unready_while_the_database_is_away_and_the_job_resumes_after(
    settings_factory: Callable[..., Settings], pg_url: str
) -> None:
    """While the database refuses connections /readyz's store check fails; once it is back the check
    passes again and the job interrupted mid-generation completes with each LLM call recorded once."""
    settings = settings_factory(
        database={"url": pg_url, "lease_seconds": 0.6, "poll_seconds": 0.05},
        llm={"provider": "offline"},
    )
    async with build_services(settings, {}) as services:
        assert all((await readiness(services, False)).values())
        job_id = await services.jobs.submit(JobRequest(vision=VISION))
        async with asyncio.timeout(20):
            while len(await services.store.calls(job_id)) < 2:  # noqa: ASYNC110 (polls the database)
                await asyncio.sleep(0.01)
        async with _outage(pg_url):
            checks = await readiness(services, False, store_seconds=0.5)
            assert checks["store_writable"] is False
            await asyncio.sleep(0.7)  # longer than the lease: the job stops here and is claimed again after
        async with asyncio.timeout(30):
            while not (await readiness(services, False, store_seconds=0.5))["store_writable"]:  # noqa: ASYNC110 (polls the database)
                await asyncio.sleep(0.05)
            while (job := await services.store.get_job(job_id)) is None or job.status != "completed":  # noqa: ASYNC110
                await asyncio.sleep(0.05)
        calls = await services.store.calls(job_id)
        assert len({c.call_key for c in calls}) == len(calls) and all(c.status == "done" for c in calls)
        items = await services.store.items(job_id)
        assert len({(i.call_key, i.kind, i.title) for i in items}) == len(items)
