"""``backlogd serve``: build the services, resume unfinished jobs, serve HTTP until SIGTERM/SIGINT,
then shut down within ``server.shutdown_grace_seconds`` (stop accepting, end SSE streams, stop the
relay, close everything)."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal

import structlog
from aiohttp import web

from service.composition import build_services
from service.settings import Settings
from web.app import create_app
from web.keys import DRAINING

log = structlog.get_logger("backlogd.serve")


async def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        async with build_services(settings, os.environ) as services:
            resumed = await services.jobs.resume_unfinished()
            app = create_app(settings, services)
            runner = web.AppRunner(
                app, access_log=None, shutdown_timeout=settings.server.shutdown_grace_seconds
            )
            await runner.setup()
            try:
                site = web.TCPSite(runner, settings.server.host, settings.server.port)
                await site.start()
                host, port = _bound(runner, settings)
                print(f"backlogd: serving on http://{host}:{port}/", flush=True)
                log.info("serving", host=host, port=port, resumed_jobs=len(resumed))
                await stop.wait()
                log.info("shutting_down", grace_seconds=settings.server.shutdown_grace_seconds)
                app[DRAINING].set()
            finally:
                await runner.cleanup()  # stop sites, end streams (on_shutdown), wait for handlers
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
    log.info("stopped")
    return 0


def _bound(runner: web.AppRunner, settings: Settings) -> tuple[str, int]:
    for address in runner.addresses:
        return str(address[0]), int(address[1])
    return settings.server.host, settings.server.port
