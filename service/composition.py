"""The composition root: builds every long-lived resource from the settings, in dependency order,
and tears them down in reverse. Used by ``backlogd run``/``resume``/``retry`` and by the web app.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import structlog

from hardware.aimd import AdaptiveLimiter
from outbox.emulator.config import EmulatorConfig
from outbox.emulator.server import RunningEmulator, serve
from outbox.store import Store
from service.broadcaster import Broadcaster
from service.jobs import JobManager
from service.settings import Settings
from service.uploads import UploadCoordinator, read_secret
from stages.providers.base import Provider
from stages.providers.offline import OfflineProvider
from stages.providers.openai import OpenAIProvider

log = structlog.get_logger("backlogd.compose")


@dataclass
class Services:
    settings: Settings
    store: Store
    broadcaster: Broadcaster
    jobs: JobManager
    llm_limiter: AdaptiveLimiter
    uploads: UploadCoordinator | None
    emulator: RunningEmulator | None
    extra: dict[str, Any] = field(default_factory=dict)


def make_provider(settings: Settings, pool: ProcessPoolExecutor | None, env: Mapping[str, str]) -> Provider:
    llm = settings.llm
    if llm.provider == "offline":
        return OfflineProvider(pool)
    return OpenAIProvider(
        base_url=llm.base_url,
        model=llm.model,
        api_key=read_secret(llm.api_key_env, env),
        structured_output=llm.structured_output,
        timeout_seconds=llm.timeout_seconds,
        max_tokens=llm.max_tokens,
        temperature=llm.temperature,
        azure_api_version=llm.azure_api_version,
    )


def llm_limiter(settings: Settings, pool_size: int) -> AdaptiveLimiter:
    pp = settings.workflow.parallel_processing
    if settings.llm.provider == "offline":  # local CPU work: no provider quota to respect
        return AdaptiveLimiter(pool_size * 2 if pp.enabled else 1, name="llm")
    ceiling = 1 if not pp.enabled else (pp.max_workers or settings.llm.max_concurrency)
    rate = pp.rate_limit_per_second or settings.llm.requests_per_minute / 60.0
    return AdaptiveLimiter(ceiling, rate_per_second=rate, name="llm")


@contextlib.asynccontextmanager
async def build_services(
    settings: Settings,
    env: Mapping[str, str],
    *,
    with_relay: bool = True,
    backoff_base: float = 0.5,
) -> AsyncIterator[Services]:
    pool_size = max(1, min(4, (settings.workflow.parallel_processing.max_workers or 2)))
    pool = ProcessPoolExecutor(max_workers=pool_size)
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(pool.shutdown, wait=True, cancel_futures=True)
        store = await stack.enter_async_context(Store.open(settings.database.path))
        broadcaster = Broadcaster(settings.progress.client_queue_size)
        session = await stack.enter_async_context(aiohttp.ClientSession())
        provider = make_provider(settings, pool, env)
        stack.push_async_callback(provider.aclose)
        emulator, emulator_pat = await _start_emulator(settings, stack)
        uploads = None
        if settings.azure_devops.target != "none" or emulator is not None:
            ado = settings.azure_devops
            uploads = UploadCoordinator(
                store=store,
                session=session,
                settings=ado,
                publish=broadcaster.publish,
                gate_factory=lambda name: AdaptiveLimiter(ado.max_concurrency, name=f"ado-{name}"),
                emulator_url=emulator.url if emulator else None,
                emulator_pat=emulator_pat,
                env=env,
            )
            stack.push_async_callback(uploads.close)
        limiter = llm_limiter(settings, pool_size)
        jobs = JobManager(
            settings=settings,
            store=store,
            broadcaster=broadcaster,
            provider=provider,
            limiter=limiter,
            pool=pool,
            uploads=uploads,
            backoff_base=backoff_base,
        )
        stack.push_async_callback(jobs.close)
        if uploads is not None and with_relay:
            relay_task = asyncio.create_task(uploads.relay.run(), name="relay")
            stack.push_async_callback(
                _stop_relay, uploads, relay_task, settings.server.shutdown_grace_seconds
            )
        yield Services(settings, store, broadcaster, jobs, limiter, uploads, emulator)


async def _start_emulator(
    settings: Settings, stack: contextlib.AsyncExitStack
) -> tuple[RunningEmulator | None, str | None]:
    """The embedded emulator (``target: emulator``), with a PAT made up for this process."""
    if settings.azure_devops.target != "emulator":
        return None, None
    pat = secrets.token_urlsafe(24)
    config = EmulatorConfig(
        projects=((settings.azure_devops.project, settings.azure_devops.emulator_process),),
        pats=frozenset({pat}),
    )
    emulator = await serve(config, "127.0.0.1", settings.azure_devops.emulator_port)
    stack.push_async_callback(emulator.close)
    log.info("emulator_started", url=emulator.url)
    return emulator, pat


async def _stop_relay(uploads: UploadCoordinator, task: asyncio.Task[None], grace: float) -> None:
    await uploads.relay.stop(grace)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
