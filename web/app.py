"""The aiohttp application: routes of design §4, the error, authentication and limits middlewares,
the static UI, ``/metrics``, and shutdown that ends every SSE stream with a ``shutdown`` event."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from service.composition import Services
from service.settings import Settings
from web import auth, guard, health, items_api, jobs_api, limits, metrics, quality_api, targets_api
from web.errors import error_middleware
from web.keys import DRAINING, SERVICES, SETTINGS, STREAMS
from web.openapi import openapi
from web.sse import encode_frame, stream_progress
from web.streams import StreamRegistry

STATIC = Path(__file__).parent / "static"


def create_app(
    settings: Settings,
    services: Services,
    *,
    api_token: str | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> web.Application:
    """The app; ``api_token`` is the secret ``server.api_token_env`` names (required when it names one)."""
    if settings.server.api_token_env and not api_token:
        raise ValueError(
            f"server.api_token_env names {settings.server.api_token_env!r} but no token was given"
        )
    gate = auth.Auth(api_token, settings.server.session_hours * 3600)
    app = web.Application(
        middlewares=[
            error_middleware,
            limits.limits_middleware,  # a body over the size limit is 413 before anything else
            guard.middleware(settings.server),
            auth.middleware(gate),
        ],
        client_max_size=settings.server.max_body_bytes,
    )
    app[SETTINGS] = settings
    app[SERVICES] = services
    app[STREAMS] = StreamRegistry(encode_frame)
    app[DRAINING] = asyncio.Event()
    app[auth.AUTH] = gate
    app[limits.LIMITS] = limits.Limits(settings.server, clock)
    metrics.install(app, services)
    add_routes(app.router)
    app.on_response_prepare.append(guard.add_security_headers)
    app.on_shutdown.append(_end_streams)
    app.on_cleanup.append(_close_streams)
    return app


def add_routes(r: web.UrlDispatcher) -> None:
    r.add_get("/api/session", auth.get_session)
    r.add_post("/api/session", auth.post_session)
    r.add_delete("/api/session", auth.delete_session)
    r.add_post("/api/jobs", limits.job_limits(jobs_api.create_job))
    r.add_get("/api/jobs", jobs_api.list_jobs)
    r.add_get("/api/jobs/{id}", jobs_api.get_job)
    r.add_delete("/api/jobs/{id}", jobs_api.cancel_job)
    r.add_get("/api/jobs/{id}/backlog", jobs_api.get_backlog)
    r.add_get("/api/jobs/{id}/export", jobs_api.export_job)
    r.add_get("/api/jobs/{id}/progress", jobs_api.get_progress)
    r.add_get("/api/jobs/{id}/quality", quality_api.get_quality)
    r.add_post("/api/vision/advice", quality_api.post_advice)
    r.add_post("/api/jobs/{id}/retry-uploads", jobs_api.retry_uploads)
    r.add_post("/api/jobs/{id}/upload", jobs_api.start_upload)
    r.add_post("/api/jobs/{id}/items", items_api.add_item)
    r.add_patch("/api/jobs/{id}/items/{item}", items_api.patch_item)
    r.add_delete("/api/jobs/{id}/items/{item}", items_api.delete_item)
    r.add_post("/api/jobs/{id}/items/{item}/resolve", items_api.resolve_item)
    r.add_post("/api/jobs/{id}/items/{item}/regenerate", items_api.regenerate_item)
    r.add_post("/api/targets/check", targets_api.check_target)
    r.add_get("/api/progress/stream/{id}", limits.stream_limits(stream_progress))
    r.add_get("/api/hardware", health.hardware)
    r.add_get("/api/openapi.json", openapi)
    r.add_get("/healthz", health.healthz)
    r.add_get("/readyz", health.readyz)
    r.add_get("/metrics", metrics.metrics)
    r.add_get("/", _index)
    r.add_static("/static/", STATIC, append_version=False)


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def _close_streams(app: web.Application) -> None:
    await app[STREAMS].close()


async def _end_streams(app: web.Application) -> None:
    """Stop accepting streams and tell every open one to send ``shutdown`` and end."""
    app[DRAINING].set()
    app[STREAMS].stop_all("shutdown")
