"""The composition root: builds every long-lived resource from the settings, in dependency order,
and tears them down in reverse. Used by ``backlogd run``/``resume``/``retry`` and by the web app.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import structlog

from emulator.config import EmulatorConfig
from emulator.server import RunningEmulator, serve
from hardware.aimd import AdaptiveLimiter
from hardware.probe import HardwareProfile, probe_async
from hardware.sizing import Sizing, report
from outbox.backend import StoreBackend, open_store
from outbox.pg.store import PgStore
from outbox.relay import Relay
from service.ado_clients import AdoClients
from service.broadcaster import Broadcaster
from service.capacity import job_metadata, llm_limiter, size_for, stage_rates
from service.cluster import Cluster
from service.edits import ItemEditor
from service.jobs import JobManager
from service.metrics import MeteredBroadcaster, MeteredProvider, Metrics
from service.notify import Notifier
from service.pool import make_pool
from service.regenerate import Regenerator
from service.runner import GenerationRunner
from service.secrets import read_secret
from service.settings import Settings
from service.upload_progress import UploadProgress
from service.uploads import UploadCoordinator
from stages.providers.base import Provider
from stages.providers.offline import OfflineProvider
from stages.providers.openai import OpenAIProvider

log = structlog.get_logger("backlogd.compose")


@dataclass
class Services:
    settings: Settings
    store: StoreBackend
    broadcaster: Broadcaster
    jobs: JobManager
    llm_limiter: AdaptiveLimiter
    uploads: UploadCoordinator | None
    emulator: RunningEmulator | None
    profile: HardwareProfile
    sizing: Sizing
    editor: ItemEditor
    regenerator: Regenerator
    notifier: Notifier
    relay: Relay | None = None
    cluster: Cluster | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    metrics: Metrics = field(default_factory=Metrics)

    def hardware(self) -> dict[str, Any]:
        """``backlogd hardware`` / ``GET /api/hardware``: profile, sizing and the live adaptive limits."""
        out: dict[str, Any] = dict(report(self.profile, self.sizing))
        out["adaptive_limits"] = {"llm": self.llm_limiter.snapshot()}
        if self.uploads is not None:
            out["adaptive_limits"].update(self.uploads.gate_snapshots())
        return out


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


def _limiters(cluster: Cluster | None, identity: str) -> Callable[..., AdaptiveLimiter]:
    """Local limiters; with several instances, limiters whose pauses every instance honours."""
    return AdaptiveLimiter if cluster is None else cluster.pauses.maker(identity)


@contextlib.asynccontextmanager
async def open_readonly(settings: Settings) -> AsyncIterator[StoreBackend]:
    """The store alone, for commands that only read it (``status``, ``export``): no process pool, no
    HTTP session, no emulator, no relay."""
    async with open_store(settings.database.url, settings.database.path) as store:
        yield store


@contextlib.asynccontextmanager
async def build_services(
    settings: Settings,
    env: Mapping[str, str],
    *,
    with_relay: bool = True,
    backoff_base: float = 0.5,
) -> AsyncIterator[Services]:
    profile = await probe_async()
    sizing = size_for(settings, profile)
    log.info(
        "sizing_chosen",
        tier=sizing.tier,
        mode=sizing.mode,
        reason=sizing.reason,
        llm_concurrency=sizing.llm_concurrency,
        pool=sizing.process_pool_size,
        uploads=sizing.upload_concurrency,
        jobs=sizing.concurrent_jobs,
    )
    pool = make_pool(sizing.process_pool_size)
    # Start the fork server and a first worker now, in the background, so the first CPU step of a job
    # (quality checks, the offline generator) does not wait for a process to start.
    asyncio.get_running_loop().run_in_executor(pool, int)
    async with contextlib.AsyncExitStack() as stack:
        # joining worker processes blocks: do it off the event loop
        stack.push_async_callback(asyncio.to_thread, pool.shutdown, wait=True, cancel_futures=True)
        store = await stack.enter_async_context(open_store(settings.database.url, settings.database.path))
        metrics = Metrics()
        broadcaster = MeteredBroadcaster(metrics, settings.progress.client_queue_size)
        db = settings.database
        cluster = None
        if isinstance(store, PgStore):
            cluster = Cluster(
                store, broadcaster, lease_seconds=db.lease_seconds, poll_seconds=db.poll_seconds
            )
        session = await stack.enter_async_context(aiohttp.ClientSession())
        provider = MeteredProvider(make_provider(settings, pool, env), metrics)
        stack.push_async_callback(provider.aclose)
        emulator, emulator_pat = await _start_emulator(settings, stack)
        uploads, relay = None, None
        if settings.azure_devops.target != "none" or emulator is not None:
            clients = AdoClients(
                store=store,
                session=session,
                settings=settings.azure_devops,
                gate_factory=lambda name: _limiters(cluster, f"ado:{name}")(
                    sizing.upload_concurrency, name=f"ado-{name}"
                ),
                emulator_url=emulator.url if emulator else None,
                emulator_pat=emulator_pat,
                env=env,
            )
            relay, uploads = _uploads(settings, sizing, store, clients, broadcaster)
            stack.push_async_callback(uploads.close)
        notifier = await stack.enter_async_context(
            Notifier(
                settings.notifications,
                store=store,
                session=session,
                page_url=settings.server.page_url(),
            )
        )
        limiter = llm_limiter(settings, sizing, _limiters(cluster, f"llm:{settings.llm.base_url}"))
        # Uploads see every committed event first (new items wake the relay), then the broadcaster.
        publish = uploads.observe if uploads is not None else broadcaster.publish
        runner = GenerationRunner(
            store=store,
            provider=provider,
            limiter=limiter,
            llm=settings.llm,
            quality_settings=settings.workflow.quality,
            publish=publish,
            pool=pool,
            backoff_base=backoff_base,
            stage_limits={name: budget.concurrency for name, budget in sizing.budgets.items()},
            stage_rates=stage_rates(settings, sizing),
            pipeline=settings.workflow.pipeline,
        )
        editor = ItemEditor(store, uploads, publish, settings.azure_devops.delete_action)
        regenerator = Regenerator(store, runner, uploads, publish)
        stack.push_async_callback(regenerator.close)
        jobs = JobManager(
            settings=settings,
            store=store,
            runner=runner,
            publish=publish,
            pool=pool,
            uploads=uploads,
            metadata=lambda: job_metadata(profile, sizing),
            concurrent_jobs=min(settings.server.max_concurrent_jobs, sizing.concurrent_jobs),
            leases=cluster,
            notifier=notifier,
        )
        stack.push_async_callback(jobs.close)
        if relay is not None and with_relay:
            relay_task = asyncio.create_task(relay.run(), name="relay")
            stack.push_async_callback(_stop_relay, relay, relay_task, settings.server.shutdown_grace_seconds)
        if cluster is not None:
            cluster.attach(jobs)
            await stack.enter_async_context(cluster.running())
        yield Services(
            settings,
            store,
            broadcaster,
            jobs,
            limiter,
            uploads,
            emulator,
            profile,
            sizing,
            editor,
            regenerator,
            notifier,
            relay=relay,
            cluster=cluster,
            metrics=metrics,
        )


def _uploads(
    settings: Settings, sizing: Sizing, store: StoreBackend, clients: AdoClients, broadcaster: Broadcaster
) -> tuple[Relay, UploadCoordinator]:
    """The relay and the coordinator over it; their progress sits between the relay and the broadcaster."""
    ado = settings.azure_devops
    progress = UploadProgress(store, broadcaster.publish)
    relay = Relay(
        store,
        clients=clients.client_for,
        publish=progress.observe,
        # Twice the requests the gate allows: an item's store work (claim, record) overlaps other
        # items' requests, so the identity's request slots never idle; the gate bounds the requests.
        concurrency=2 * sizing.upload_concurrency,
        lease_seconds=ado.lease_seconds,
        max_attempts=ado.upload_retry_attempts,
    )
    return relay, UploadCoordinator(store=store, clients=clients, relay=relay, progress=progress)


async def _start_emulator(
    settings: Settings, stack: contextlib.AsyncExitStack
) -> tuple[RunningEmulator | None, str | None]:
    """The embedded emulator (``target: emulator``) on loopback, answering only to a PAT made up for
    this process (handed to the uploader, never shown)."""
    if settings.azure_devops.target != "emulator":
        return None, None
    pat = secrets.token_urlsafe(24)
    config = EmulatorConfig(
        projects=((settings.azure_devops.project, settings.azure_devops.emulator_process),),
        pats=frozenset({pat}),
        control=settings.emulator.control,
    )
    # Its writes are journaled next to the database and replayed on the next start, on the port it had
    # (when free), so uploaded items keep their ids and links across restarts of the service.
    state_dir = Path(settings.database.path).parent
    journal, port_file = state_dir / "emulator-journal.jsonl", state_dir / "emulator-port"
    port = settings.azure_devops.emulator_port or await asyncio.to_thread(_remembered_port, port_file)
    try:
        emulator = await serve(config, "127.0.0.1", port, journal=journal)
    except OSError:  # the remembered port is taken: any free one (links to old items change)
        emulator = await serve(config, "127.0.0.1", 0, journal=journal)
    await asyncio.to_thread(port_file.write_text, str(emulator.port), "utf-8")
    stack.push_async_callback(emulator.close)
    log.info("emulator_started", url=emulator.url, journal=journal.name)
    return emulator, pat


def _remembered_port(path: Path) -> int:
    try:
        return int(path.read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return 0


async def _stop_relay(relay: Relay, task: asyncio.Task[None], grace: float) -> None:
    await relay.stop(grace)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
