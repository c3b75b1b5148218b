"""Liveness, readiness and the hardware report."""

from __future__ import annotations

import os
from typing import Any

from aiohttp import web

from web.keys import DRAINING, SERVICES, STREAMS


async def healthz(request: web.Request) -> web.Response:
    """Liveness: answering at all means the event loop runs."""
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Ready: the store takes a write lock, the relay runs (when uploads exist), we are not draining."""
    services = request.app[SERVICES]
    checks: dict[str, bool] = {"not_draining": not request.app[DRAINING].is_set()}
    try:
        async with services.store.transaction():
            pass  # BEGIN IMMEDIATE + COMMIT: the database is writable
        checks["store_writable"] = True
    except Exception:
        checks["store_writable"] = False
    if services.uploads is not None:
        checks["relay_alive"] = services.uploads.relay.alive
    ready = all(checks.values())
    body = {
        "status": "ready" if ready else "not_ready",
        "checks": checks,
        "sse_clients": len(request.app[STREAMS]),
    }
    return web.json_response(body, status=200 if ready else 503)


async def hardware(request: web.Request) -> web.Response:
    report: Any = request.app[SERVICES].extra.get("hardware")
    if report is None:
        report = {"logical_cpus": os.cpu_count() or 1, "source": "os.cpu_count"}
    elif hasattr(report, "model_dump"):
        report = report.model_dump(mode="json")
    return web.json_response(report)
