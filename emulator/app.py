"""The emulator application: one catch-all route dispatched by a case-insensitive router, wrapped by
observation (counters, WrappedException errors, correlation headers), auth and fault middlewares."""

from __future__ import annotations

import uuid

from aiohttp import web
from aiohttp.typedefs import Handler as NextHandler

from emulator import (
    browse,
    control,
    routes_batch,
    routes_meta,
    routes_nodes,
    routes_testplan,
    routes_wit,
)
from emulator.auth import auth_middleware
from emulator.config import EmulatorConfig
from emulator.errors import AdoError, error_response
from emulator.faults import fault_middleware
from emulator.journal import JOURNAL, Journal, journal_middleware
from emulator.routing import EMULATOR_STATE, ROUTE_KEY, ROUTER, RouteMatch, Router, require_api_version
from emulator.scopes import scope_middleware
from emulator.state import EmulatorState


def build_router() -> Router:
    router = Router()
    control.add_routes(router)
    browse.add_routes(router)
    routes_meta.add_routes(router)
    routes_wit.add_routes(router)
    routes_nodes.add_routes(router)
    routes_testplan.add_routes(router)
    routes_batch.add_routes(router)
    return router


@web.middleware
async def observe_middleware(request: web.Request, handler: NextHandler) -> web.StreamResponse:
    state = request.app[EMULATOR_STATE]
    match = request.app[ROUTER].resolve(request.method, request.path)
    if match is not None and match.route.route_class == "control" and not state.config.control:
        match = None  # the control routes exist only with emulator.control: true
    public = match is not None and match.route.internal
    if not public:
        state.requests_total += 1
    try:
        if match is None:
            raise AdoError(404, "RouteNotFoundException", f"Page not found: {request.method} {request.path}")
        request[ROUTE_KEY] = match
        response = await handler(request)
    except AdoError as err:
        response = error_response(err)
    if not public:
        state.status_counts[response.status] += 1
        activity = str(uuid.uuid4())
        response.headers.setdefault("ActivityId", activity)
        response.headers.setdefault("X-VSS-E2EID", activity)
        if "X-TFS-Session" in request.headers:
            response.headers["X-TFS-Session"] = request.headers["X-TFS-Session"]
    return response


async def dispatch(request: web.Request) -> web.StreamResponse:
    match: RouteMatch = request[ROUTE_KEY]
    if not match.route.internal:
        require_api_version(request)
    return await match.route.handler(request, match)


def create_emulator_app(config: EmulatorConfig, journal: Journal | None = None) -> web.Application:
    middlewares = [observe_middleware, auth_middleware, scope_middleware, fault_middleware]
    if journal is not None:
        middlewares.append(journal_middleware)  # innermost: only writes that reached a handler
    app = web.Application(middlewares=middlewares)
    if journal is not None:
        app[JOURNAL] = journal
    app[EMULATOR_STATE] = EmulatorState(config)
    app[ROUTER] = build_router()
    app.router.add_route("*", "/{tail:.*}", dispatch)
    return app
