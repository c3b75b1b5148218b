"""The aiohttp application: the route table (``web.routes``) and its OpenAPI document, the error,
authentication and limits middlewares, the static UI, ``/metrics``, and shutdown that ends every SSE
stream with a ``shutdown`` event."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

from aiohttp import web

from service.composition import Services
from service.settings import Settings
from web import auth, guard, limits, metrics, routes
from web.errors import error_middleware
from web.keys import DRAINING, SERVICES, SETTINGS, STREAMS
from web.sse import encode_frame
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
    routes.install(app)
    app.router.add_get("/", _index)
    app.router.add_static("/static/", STATIC, append_version=False)
    app.on_response_prepare.append(guard.add_security_headers)
    app.on_shutdown.append(_end_streams)
    app.on_cleanup.append(_close_streams)
    return app


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})


async def _close_streams(app: web.Application) -> None:
    await app[STREAMS].close()


async def _end_streams(app: web.Application) -> None:
    """Stop accepting streams and tell every open one to send ``shutdown`` and end."""
    app[DRAINING].set()
    app[STREAMS].stop_all("shutdown")
