"""``backlogd serve``: build the services, resume unfinished jobs, serve HTTP until SIGTERM/SIGINT.

Under systemd (``Type=notify``): ``READY=1`` once the store, the relay and the listener are up and
/readyz would pass; ``WATCHDOG=1`` from the event loop while those checks hold; ``STOPPING=1`` on
SIGTERM. Shutdown then runs within ``server.shutdown_grace_seconds``, all at once: new jobs get 503,
no new LLM call starts (in-flight ones may finish), in-flight uploads finish or their leases are
released, SSE clients get a final ``shutdown`` event; unfinished jobs resume on the next start.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
import time

import structlog
from aiohttp import web

from service.composition import Services, build_services
from service.logs import redact
from service.sdnotify import Notifier
from service.secrets import read_secret
from service.settings import Settings
from web.app import create_app
from web.auth import listen_problem
from web.health import readiness
from web.keys import DRAINING

log = structlog.get_logger("backlogd.serve")
_NO_NEW_CALLS = 86_400.0  # the LLM limiter's pause while draining: longer than any shutdown


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    token = read_secret(settings.server.api_token_env, os.environ)
    problem = listen_problem(settings.server, token)
    if problem:
        print(f"backlogd: {problem}", file=sys.stderr)
        return 2
    redact(token)
    notifier = Notifier(os.environ)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with build_services(settings, os.environ) as services:
            resumed = await services.jobs.resume_unfinished()
            app = create_app(settings, services, api_token=token)
            await _serve(app, services, settings, notifier, stop, len(resumed))
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        notifier.close()
    log.info("stopped")
    return 0


async def _serve(
    app: web.Application,
    services: Services,
    settings: Settings,
    notifier: Notifier,
    stop: asyncio.Event,
    resumed: int,
) -> None:
    grace = settings.server.shutdown_grace_seconds
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=grace)
    await runner.setup()
    cleaned = False
    try:
        site = web.TCPSite(runner, settings.server.host, settings.server.port)
        await site.start()
        host, port = _bound(runner, settings)
        shown = f"[{host}]" if ":" in host else host  # an IPv6 address goes in brackets in a URL
        url = f"http://{shown}:{port}/"
        await _until_ready(services, stop)
        print(f"backlogd: serving on {url}", flush=True)
        log.info(
            "serving", host=host, port=port, resumed_jobs=resumed, auth=bool(settings.server.api_token_env)
        )
        notifier.ready(f"serving on {url}")
        interval = (notifier.watchdog_seconds or 2.0) / 4
        async with notifier.watchdog(lambda: _healthy(services, interval)):
            await stop.wait()
        notifier.stopping()
        log.info("shutting_down", grace_seconds=grace)
        app[DRAINING].set()
        started = time.monotonic()
        cleaned = True
        await asyncio.gather(runner.cleanup(), _drain(services, grace))
        log.info("drained", seconds=round(time.monotonic() - started, 3))
    finally:
        if not cleaned:
            await runner.cleanup()


async def _until_ready(services: Services, stop: asyncio.Event) -> None:
    """Wait until the checks behind /readyz pass (the relay task may not have started yet)."""
    while not stop.is_set():
        if all((await readiness(services, draining=False)).values()):
            return
        await asyncio.sleep(0.02)


async def _healthy(services: Services, store_seconds: float) -> bool:
    return all((await readiness(services, draining=False, store_seconds=store_seconds)).values())


async def _drain(services: Services, grace: float) -> None:
    """No new LLM call; in-flight calls and uploads get ``grace`` to finish, then leases are released."""
    limiter = services.llm_limiter
    limiter.pause(_NO_NEW_CALLS)
    waits = [_llm_calls_done(services, grace)]
    if services.relay is not None:
        waits.append(services.relay.stop(grace))
    await asyncio.gather(*waits)


async def _llm_calls_done(services: Services, grace: float) -> None:
    limiter = services.llm_limiter
    deadline = time.monotonic() + grace
    while limiter.in_use:  # the limiter has no "idle" event to wait for: look every 20 ms
        if time.monotonic() >= deadline:
            log.info("llm_calls_abandoned", in_flight=limiter.in_use)
            return
        await asyncio.sleep(0.02)


def _bound(runner: web.AppRunner, settings: Settings) -> tuple[str, int]:
    for address in runner.addresses:
        return str(address[0]), int(address[1])
    return settings.server.host, settings.server.port
