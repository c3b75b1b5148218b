"""PAT scopes (E12 scope mode): a PAT granted only some scopes gets 401 outside them.

A write scope includes its read scope (``vso.work_write`` ⊃ ``vso.work``). Discovery routes (projects,
processes, types) need no listed scope here. Runs after authentication, so the PAT is a known one.
"""

from __future__ import annotations

from aiohttp import web
from aiohttp.typedefs import Handler as NextHandler

from emulator.auth import token_of
from emulator.errors import AdoError
from emulator.routing import EMULATOR_STATE, ROUTE_KEY, RouteMatch

_IMPLIED = {"vso.work_write": "vso.work", "vso.test_write": "vso.test"}


def required_scope(route_class: str, method: str) -> str | None:
    reading = method in ("GET", "HEAD", "OPTIONS")
    if route_class in ("create", "update", "batch"):
        return "vso.work_write"
    if route_class in ("get", "wiql"):
        return "vso.work"
    if route_class == "nodes":
        return "vso.work" if reading else "vso.work_write"
    if route_class == "testplan":
        return "vso.test" if reading else "vso.test_write"
    return None


@web.middleware
async def scope_middleware(request: web.Request, handler: NextHandler) -> web.StreamResponse:
    match: RouteMatch | None = request.get(ROUTE_KEY)
    config = request.app[EMULATOR_STATE].config
    if match is None or match.route.public or not config.pat_scopes:
        return await handler(request)
    token = token_of(request.headers.get("Authorization", ""))
    granted = config.pat_scopes.get(token or "")
    needed = required_scope(match.route.route_class, request.method)
    if granted is None or needed is None:
        return await handler(request)
    effective = set(granted) | {_IMPLIED[s] for s in granted if s in _IMPLIED}
    if needed not in effective:
        raise AdoError(
            401,
            "UnauthorizedRequestException",
            f"TF400813: The user is not authorized to access this resource. "
            f"The personal access token lacks the scope {needed}.",
        )
    return await handler(request)
