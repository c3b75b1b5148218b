"""Fault injection middleware (§10.2): throttling, delays, warnings, 5xx, resets, slow and lost responses.

Every Retry-After it sends is remembered per identity; a request from that identity arriving before
the announced deadline is counted in `early_requests` (clients must honour Retry-After identity-wide).
"""

from __future__ import annotations

import asyncio
import json
import time

from aiohttp import web
from aiohttp.typedefs import Handler as NextHandler

from emulator.config import FAULT_KINDS, FaultKind
from emulator.errors import JSON_CONTENT_TYPE, wrapped_exception
from emulator.routing import EMULATOR_STATE, IDENTITY_KEY, ROUTE_KEY, RouteMatch
from emulator.state import EmulatorState

RATE_LIMIT = "200"
_RESOURCE = "ATCPU/VSID (emulated)"


def pick_fault(state: EmulatorState, route_class: str) -> FaultKind | None:
    """One seeded draw per matching call; every_nth wins over probabilities."""
    faults = state.faults
    if "any" not in faults.routes and route_class not in faults.routes:
        return None
    if faults.limit is not None and state.faults_fired >= faults.limit:
        return None
    state.fault_calls += 1
    draw = state.rng.random()
    chosen: FaultKind | None = None
    for kind in FAULT_KINDS:
        every = faults.every_nth.get(kind, 0)
        if every > 0 and state.fault_calls % every == 0:
            chosen = kind
            break
    if chosen is None:
        edge = 0.0
        for kind in FAULT_KINDS:
            edge += float(getattr(faults, kind))
            if draw < edge:
                chosen = kind
                break
    if chosen is not None:
        state.faults_fired += 1
        state.faults_injected[chosen] += 1
    return chosen


def seconds_text(seconds: float) -> str:
    return f"{seconds:g}" if seconds < 1e6 else str(int(seconds))


def _rate_headers(
    state: EmulatorState, identity: str, remaining: int, retry_after: float | None = None
) -> dict[str, str]:
    retry_after = state.faults.retry_after_seconds if retry_after is None else retry_after
    state.announce_retry_after(identity, retry_after)
    return {
        "Retry-After": seconds_text(retry_after),
        "X-RateLimit-Resource": _RESOURCE,
        "X-RateLimit-Limit": RATE_LIMIT,
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(int(time.time() + retry_after) + 1),
    }


def _json_error(
    status: int, type_key: str, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    body = json.dumps(wrapped_exception(type_key, message))
    response = web.Response(status=status, text=body, headers=headers)
    response.headers["Content-Type"] = JSON_CONTENT_TYPE
    return response


def _drop(request: web.Request) -> web.Response:
    """Close the socket without a response; the client sees a server disconnect."""
    if request.transport is not None:
        request.transport.abort()
    return web.Response(status=499)


def _error_503(state: EmulatorState) -> web.Response:
    if state.faults.error_503_html:
        page = "<!DOCTYPE html><html><body><h1>Service Unavailable</h1></body></html>"
        return web.Response(status=503, text=page, content_type="text/html")
    return _json_error(
        503,
        "CircuitBreakerShortCircuitException",
        "TF10216: Azure DevOps services are currently unavailable. Try again later.",
    )


def _throttled(state: EmulatorState, identity: str, retry_after: float | None) -> web.Response:
    message = (
        "TF400733: The request has been canceled: Request was blocked due to exceeding usage of resource "
        "'ATCPU' in namespace 'VSID'."
    )
    return _json_error(
        429, "RequestBlockedException", message, _rate_headers(state, identity, 0, retry_after)
    )


async def _with_fault(
    kind: FaultKind, request: web.Request, handler: NextHandler, state: EmulatorState, identity: str
) -> web.StreamResponse:
    faults = state.faults
    if kind == "reset":
        return _drop(request)
    if kind == "throttle":
        return _throttled(state, identity, None)
    if kind == "error_503":
        return _error_503(state)
    if kind == "error_500":
        message = "TF246020: Microsoft SQL Server encountered an error while processing the request."
        return _json_error(500, "SqlException", message)
    if kind == "delay":
        await asyncio.sleep(faults.delay_seconds)
    response = await handler(request)
    if kind == "error_503_after" and response.status < 300:
        return _error_503(state)  # committed: only the answer is lost to the gateway
    if kind == "lose_response" and response.status < 300:
        if faults.lose_response_mode == "502":
            return web.Response(
                status=502, text="<html><body>502 Bad Gateway</body></html>", content_type="text/html"
            )
        return _drop(request)
    if kind == "slow":
        await asyncio.sleep(faults.slow_seconds)
    if kind == "delay":
        response.headers.update(_rate_headers(state, identity, 0))
        response.headers["X-RateLimit-Delay"] = f"{faults.delay_seconds:.3f}"
    if kind == "warning":
        response.headers.update(_rate_headers(state, identity, 5))
    return response


@web.middleware
async def fault_middleware(request: web.Request, handler: NextHandler) -> web.StreamResponse:
    match: RouteMatch | None = request.get(ROUTE_KEY)
    identity: str | None = request.get(IDENTITY_KEY)
    if match is None or match.route.internal or identity is None:
        return await handler(request)
    state = request.app[EMULATOR_STATE]
    left = state.note_arrival(identity)
    if left > 0 and state.faults.enforce_retry_after:
        state.faults_injected["throttle_early"] += 1
        return _throttled(state, identity, left)
    if state.faults.latency_seconds > 0:
        await asyncio.sleep(state.faults.latency_seconds)
    kind = pick_fault(state, match.route.route_class)
    if kind is None:
        return await handler(request)
    return await _with_fault(kind, request, handler, state, identity)
