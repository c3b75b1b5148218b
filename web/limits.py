"""Request limits, each refused with a JSON error and, where waiting helps, ``Retry-After``.

request body      > server.max_body_bytes            413 body_too_large   (Content-Length, else aiohttp)
vision            > server.max_vision_bytes          413 vision_too_large
new jobs          > jobs_per_client_per_minute       429 too_many_requests  Retry-After: until one expires
waiting jobs      >= server.max_queued_jobs          429 too_many_jobs      (running ones are bounded by
                                                                             max_concurrent_jobs; the rest
                                                                             wait queued up to this many;
                                                                             counted in the transaction
                                                                             that inserts the job)
progress streams  >= sse_connections_per_client      429 too_many_streams
login attempts    > 10 per client per minute         429 too_many_requests
any POST while shutting down                         503 shutting_down      Retry-After
A client is its remote address (behind a reverse proxy, all of its clients count as one).

The windows are written here, not taken from a rate-limit library: they refuse at once with the
exact wait for ``Retry-After`` and run on an injected clock (aiolimiter waits instead of refusing;
the ``limits`` package reads the wall clock itself).
"""

from __future__ import annotations

import json
import math
import time
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any

from aiohttp import web

from service.settings import ServerSettings
from web.bodies import read_json
from web.errors import Handler, error_response
from web.keys import DRAINING

LOGINS_PER_MINUTE = 10


class SlidingWindow:
    """At most ``limit`` events per client in any ``window`` seconds."""

    def __init__(self, limit: int, window: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._hits: dict[str, deque[float]] = defaultdict(deque)

    def hit(self, client: str) -> float | None:
        """Record an event; None when allowed, else the seconds until the next one would be."""
        now = self._clock()
        if len(self._hits) > 4096:  # many clients came and went: drop the idle ones
            self.forget_idle()
        hits = self._hits[client]
        while hits and hits[0] <= now - self.window:
            hits.popleft()
        if len(hits) >= self.limit:
            return hits[0] + self.window - now
        hits.append(now)
        return None

    def forget_idle(self) -> None:
        now = self._clock()
        for client in [c for c, h in self._hits.items() if not h or h[-1] <= now - self.window]:
            del self._hits[client]


class ConnectionCount:
    """Open connections per client."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: dict[str, int] = defaultdict(int)

    def acquire(self, client: str) -> bool:
        if self._open[client] >= self.limit:
            return False
        self._open[client] += 1
        return True

    def release(self, client: str) -> None:
        self._open[client] -= 1
        if self._open[client] <= 0:
            del self._open[client]


class Limits:
    def __init__(self, server: ServerSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.server = server
        self.jobs = SlidingWindow(server.jobs_per_client_per_minute, clock=clock)
        self.logins = SlidingWindow(LOGINS_PER_MINUTE, clock=clock)
        self.streams = ConnectionCount(server.sse_connections_per_client)


LIMITS = web.AppKey("limits", Limits)


def client_of(request: web.Request) -> str:
    return request.remote or "unknown"


def retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


def too_many(code: str, message: str, wait: float, limit: int) -> web.Response:
    details = [{"field": "(client)", "message": message, "limit": limit}]
    return error_response(429, code, message, details, headers=retry_after(wait))


def too_large(code: str, field: str, size: int | None, limit: int) -> web.Response:
    what = "the request body" if field == "(body)" else f"`{field}`"
    got = f" ({size} bytes)" if size is not None else ""
    message = f"{what} is larger than the limit of {limit} bytes{got}"
    details = [{"field": field, "message": message, "limit": limit, "size": size}]
    return error_response(413, code, message, details)


@web.middleware
async def limits_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Shutdown refusals and the body size, before any handler reads a byte."""
    if request.method == "POST" and request.path.startswith("/api/") and request.app[DRAINING].is_set():
        return error_response(
            503, "shutting_down", "the service is shutting down; retry shortly", headers=retry_after(5)
        )
    limit = request.app[LIMITS].server.max_body_bytes
    if request.content_length is not None and request.content_length > limit:
        return too_large("body_too_large", "(body)", request.content_length, limit)
    return await handler(request)


def vision_size(body: Any) -> int:
    """The vision's size in UTF-8 bytes: the text, or the structured vision as compact JSON."""
    vision = body.get("vision") if isinstance(body, dict) else None
    if isinstance(vision, str):
        return len(vision.encode("utf-8", "surrogatepass"))
    if vision is None:
        return 0
    return len(json.dumps(vision, separators=(",", ":"), ensure_ascii=False).encode("utf-8", "surrogatepass"))


def job_limits(create: Handler) -> Handler:
    """``POST /api/jobs`` behind the per-client rate and the vision size. The per-client window is
    checked and recorded with no await in between (atomic on the event loop); the waiting-queue bound
    is enforced by the store in the transaction that inserts the job (QueueFull)."""

    async def limited(request: web.Request) -> web.StreamResponse:
        limits = request.app[LIMITS]
        wait = limits.jobs.hit(client_of(request))
        if wait is not None:
            n = limits.jobs.limit
            return too_many("too_many_requests", f"at most {n} new jobs per minute per client", wait, n)
        size = vision_size(await read_json(request))
        if size > limits.server.max_vision_bytes:
            return too_large("vision_too_large", "vision", size, limits.server.max_vision_bytes)
        return await create(request)

    return limited


def stream_limits(stream: Handler) -> Handler:
    """The progress stream behind the per-client connection bound."""

    async def limited(request: web.Request) -> web.StreamResponse:
        limits, client = request.app[LIMITS], client_of(request)
        if not limits.streams.acquire(client):
            n = limits.streams.limit
            message = f"at most {n} open progress streams per client; close one or poll the progress"
            return too_many("too_many_streams", message, 5, n)
        try:
            return await stream(request)
        finally:
            limits.streams.release(client)

    return limited
