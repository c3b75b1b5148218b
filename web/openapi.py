"""``GET /api/openapi.json``: the document generated from the route table (``web.routes``) and the
request and response models, once per app.

With ``server.api_token_env`` set, every ``/api/*`` operation but ``/api/session`` and ``/metrics``
need the bearer token or the session cookie (``security``); errors are always the ``Error`` schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from web.auth import COOKIE
from web.routing import Reply, Route
from web.schemas import Error, OpenAPIDocument, reply

DOCUMENT = web.AppKey("openapi_document", OpenAPIDocument)
_REF = "#/components/schemas/{model}"
_PATH_PARAM = {"type": "string", "format": "uuid"}
_OPEN: list[dict[str, list[str]]] = [{}]  # no token needed, even when auth is on
_SECURITY = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "the token server.api_token_env names"},
    "sessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": COOKIE,
        "description": "from POST /api/session",
    },
}
Refs = Mapping[tuple[Any, JsonSchemaMode], dict[str, Any]]  # (model, mode) → its $ref


def spec(routes: Sequence[Route]) -> OpenAPIDocument:
    """The OpenAPI 3.1 document of ``routes``; every model's ``$defs`` are hoisted into components."""
    refs, defs = models_json_schema(_models(routes), ref_template=_REF)
    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, routes, refs)
    return OpenAPIDocument(
        openapi="3.1.0",
        info={
            "title": "backlogd",
            "version": "0.1.0",
            "description": "Vision → agile backlog → Azure DevOps, live progress.",
        },
        paths=paths,
        components={"schemas": defs.get("$defs", {}), "securitySchemes": _SECURITY},
        # Without a token configured the API is open ({}); with one, either scheme works.
        security=[{}, {"bearerAuth": []}, {"sessionCookie": []}],
    )


def _models(routes: Iterable[Route]) -> list[tuple[type[BaseModel], JsonSchemaMode]]:
    wanted: dict[tuple[type[BaseModel], JsonSchemaMode], None] = {(Error, "serialization"): None}
    for route in routes:
        if route.body is not None:
            wanted[(route.body, "validation")] = None
        for answer in route.responses.values():
            if answer.model is not None:
                wanted[(answer.model, "serialization")] = None
    return list(wanted)


def _operation(route: Route, routes: Sequence[Route], refs: Refs) -> dict[str, Any]:
    path_params = [
        {"name": n, "in": "path", "required": True, "schema": _PATH_PARAM} for n in route.path_params
    ]
    params = [
        {"name": p.name, "in": p.where, "schema": dict(p.schema)}
        | ({"description": p.description} if p.description else {})
        for p in route.params
    ]
    responses = {str(status): _response(answer, routes, refs) for status, answer in route.responses.items()}
    op: dict[str, Any] = {
        "operationId": route.operation_id,
        "summary": route.summary,
        "parameters": path_params + params,
        "responses": {**responses, "default": _response(Reply("error", Error), routes, refs)},
    }
    if route.body is not None:
        schema = refs[(route.body, "validation")]
        op["requestBody"] = {
            "required": route.body_required,
            "content": {"application/json": {"schema": schema}},
        }
    if route.open:
        op["security"] = _OPEN
    return op


def _response(answer: Reply, routes: Sequence[Route], refs: Refs) -> dict[str, Any]:
    out: dict[str, Any] = {"description": answer.description}
    content = {media: {"schema": dict(schema)} for media, schema in answer.media.items()}
    if answer.model is not None:
        content = {"application/json": {"schema": refs[(answer.model, "serialization")]}, **content}
    if content:
        out["content"] = content
    if answer.headers:
        out["headers"] = {
            name: {"description": text, "schema": {"type": "string"}} for name, text in answer.headers.items()
        }
    if answer.link_job:
        out["links"] = _job_links(routes)
    return out


def _job_links(routes: Sequence[Route]) -> dict[str, Any]:
    """From a new job's id to every operation on one job (schemathesis chains them)."""
    return {
        route.operation_id: {
            "operationRef": _ref(route.path, route.method.lower()),
            "parameters": {"id": "$response.body#/job_id"},
        }
        for route in routes
        if route.path_params == ("id",)
    }


def _ref(path: str, method: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


async def openapi(request: web.Request) -> web.Response:
    return reply(request.app[DOCUMENT])
