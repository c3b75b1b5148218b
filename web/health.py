"""Liveness, readiness and the hardware report."""

from __future__ import annotations

import asyncio

from aiohttp import web

from service.composition import Services
from web.keys import DRAINING, SERVICES, STREAMS
from web.schemas import HardwareReport, Liveness, Readiness, reply


async def healthz(request: web.Request) -> web.Response:
    """Liveness: answering at all means the event loop runs."""
    return reply(Liveness(status="ok"))


async def readiness(services: Services, draining: bool, store_seconds: float = 2.0) -> dict[str, bool]:
    """The checks behind /readyz and the systemd watchdog: the store takes a write lock in time, the
    relay runs (when uploads exist), we are not draining."""
    checks: dict[str, bool] = {"not_draining": not draining}
    try:
        async with asyncio.timeout(store_seconds), services.store.transaction():
            pass  # BEGIN IMMEDIATE + COMMIT: the database is writable
        checks["store_writable"] = True
    except Exception:
        checks["store_writable"] = False
    if services.relay is not None:
        checks["relay_alive"] = services.relay.alive
    return checks


async def readyz(request: web.Request) -> web.Response:
    """Ready: the store takes a write lock, the relay runs (when uploads exist), we are not draining."""
    checks = await readiness(request.app[SERVICES], request.app[DRAINING].is_set())
    ready = all(checks.values())
    body = Readiness(
        status="ready" if ready else "not_ready", checks=checks, sse_clients=len(request.app[STREAMS])
    )
    return reply(body, status=200 if ready else 503)


async def hardware(request: web.Request) -> web.Response:
    """The probe, the sizing chosen from it, and the adaptive limits as they are now."""
    return reply(HardwareReport.model_validate(request.app[SERVICES].hardware()))
