"""Case-insensitive routing (the service matches routes regardless of case) and shared handler helpers."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from emulator.errors import JSON_CONTENT_TYPE, AdoError
from emulator.state import EmulatorState, Project

EMULATOR_STATE: web.AppKey[EmulatorState] = web.AppKey("EMULATOR_STATE", EmulatorState)
API_VERSION = "7.1"


@dataclass(frozen=True)
class RouteMatch:
    route: Route
    params: dict[str, str]


Handler = Callable[[web.Request, RouteMatch], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    methods: frozenset[str]
    pattern: re.Pattern[str]
    handler: Handler
    route_class: str  # used by fault injection; "control"/"browse" are never faulted
    public: bool = False  # no PAT needed (the human browsing pages; never the control routes)

    @property
    def internal(self) -> bool:
        """Control and browse routes: not counted, never faulted, no api-version."""
        return self.route_class in ("control", "browse")


@dataclass
class Router:
    routes: list[Route] = field(default_factory=list)

    def add(
        self, methods: str, pattern: str, handler: Handler, route_class: str, public: bool = False
    ) -> None:
        """`pattern` is a regex over the decoded path; `{org}`-style shorthands expand to one segment."""
        regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern)
        compiled = re.compile(regex + "/?", re.IGNORECASE)
        self.routes.append(Route(frozenset(methods.split("|")), compiled, handler, route_class, public))

    def resolve(self, method: str, path: str) -> RouteMatch | None:
        for route in self.routes:
            found = route.pattern.fullmatch(path)
            if found and method in route.methods:
                return RouteMatch(route, {k: v for k, v in found.groupdict().items() if v is not None})
        return None


ROUTER: web.AppKey[Router] = web.AppKey("EMULATOR_ROUTER", Router)
ROUTE_KEY: web.RequestKey[RouteMatch] = web.RequestKey("emulator_route", RouteMatch)
IDENTITY_KEY: web.RequestKey[str] = web.RequestKey("emulator_identity", str)


def state_of(request: web.Request) -> EmulatorState:
    return request.app[EMULATOR_STATE]


def base_url(request: web.Request) -> str:
    override = state_of(request).config.base_url_override
    return (override or f"{request.scheme}://{request.host}").rstrip("/")


def org_url(request: web.Request) -> str:
    return f"{base_url(request)}/{state_of(request).config.organization}"


def check_org(request: web.Request, params: dict[str, str]) -> None:
    org = params.get("org", "")
    if org.casefold() != state_of(request).config.organization.casefold():
        raise AdoError(
            404, "OrganizationNotFoundException", f"VS800075: The organization {org} does not exist."
        )


def project_of(request: web.Request, params: dict[str, str]) -> Project:
    check_org(request, params)
    name = params.get("project", "")
    project = state_of(request).project(name)
    if project is None:
        raise AdoError(
            404,
            "ProjectDoesNotExistWithNameException",
            f"TF200016: The following project does not exist: {name}. Verify that the name of the project "
            "is correct and that the project exists on the specified Azure DevOps Server.",
        )
    return project


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    response = web.Response(status=status, text=json.dumps(body), headers=headers)
    response.headers["Content-Type"] = f"{JSON_CONTENT_TYPE}; api-version={API_VERSION}"
    return response


def collection(values: list[Any]) -> web.Response:
    return json_response({"count": len(values), "value": values})


def api_version_of(request: web.Request) -> str | None:
    """api-version may come as a query parameter or as a parameter of the Accept header."""
    if request.query.get("api-version"):
        return request.query["api-version"]
    found = re.search(r"api-version\s*=\s*([\w.\-]+)", request.headers.get("Accept", ""), re.IGNORECASE)
    return found.group(1) if found else None


def require_api_version(request: web.Request) -> None:
    if request.method in {"POST", "PATCH", "PUT", "DELETE"} and api_version_of(request) is None:
        raise AdoError(
            400,
            "VssVersionNotSpecifiedException",
            f'No api-version was supplied for the "{request.method}" request. The version must be supplied '
            'either as part of the Accept header (e.g. "application/json; api-version=1.0") or as a query '
            'parameter (e.g. "?api-version=1.0").',
        )


async def read_json(request: web.Request) -> Any:
    try:
        text = await request.text()
        return json.loads(text.lstrip("\ufeff")) if text.strip() else None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AdoError(
            400, "VssRequestContentException", f"The request body is not valid JSON: {exc}"
        ) from exc


def flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").casefold() == "true"
