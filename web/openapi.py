"""``GET /api/openapi.json``: the API described by hand, request bodies from the pydantic models."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service.requests import JobRequest
from web.jobs_api import CredentialsBody

_JOB_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
_ERROR = {
    "description": "error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_JSON_OK = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}


def _op(
    summary: str,
    responses: dict[str, Any],
    *,
    job: bool = True,
    body: str | None = None,
    params: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": ([_JOB_ID] if job else []) + (params or []),
        "responses": {**responses, "default": _ERROR},
    }
    if body:
        op["requestBody"] = {
            "required": body == "JobRequest",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    return op


def _etag_params() -> list[dict[str, Any]]:
    return [
        {
            "name": "If-None-Match",
            "in": "header",
            "schema": {"type": "string"},
            "description": "the ETag of the last response; 304 when nothing changed",
        }
    ]


def spec() -> dict[str, Any]:
    sse = {
        "description": "text/event-stream: `id:` = seq, `event:` = progress|item|upload|stage|final|error|"
        "shutdown, `data:` = JSON; heartbeat comments; a `retry:` hint",
        "content": {"text/event-stream": {"schema": {"type": "string"}}},
    }
    paths: dict[str, Any] = {
        "/api/jobs": {
            "post": _op(
                "Create and start a job (only `vision` is required)",
                {"202": {"description": "accepted: {job_id, links}"}},
                job=False,
                body="JobRequest",
                params=[
                    {
                        "name": "vision_format",
                        "in": "query",
                        "schema": {"enum": ["yaml", "json", "md", "txt"]},
                        "description": "parse a string `vision` as the content of a file of this format",
                    }
                ],
            ),
            "get": _op(
                "List recent jobs",
                {"200": _JSON_OK, "304": {"description": "not modified"}},
                job=False,
                params=[{"name": "limit", "in": "query", "schema": {"type": "integer"}}, *_etag_params()],
            ),
        },
        "/api/jobs/{id}": {
            "get": _op("One job: status, options, item counts", {"200": _JSON_OK}),
            "delete": _op("Cancel the job", {"200": _JSON_OK}),
        },
        "/api/jobs/{id}/backlog": {
            "get": _op(
                "The backlog tree with each item's upload state, ADO id, URL and error", {"200": _JSON_OK}
            )
        },
        "/api/jobs/{id}/export": {
            "get": _op(
                "Download the backlog",
                {"200": {"description": "attachment"}},
                params=[{"name": "format", "in": "query", "schema": {"enum": ["json", "csv", "md"]}}],
            )
        },
        "/api/jobs/{id}/progress": {
            "get": _op(
                "Progress snapshot; ETag is the job's last event seq",
                {"200": _JSON_OK, "304": {"description": "not modified"}},
                params=_etag_params(),
            )
        },
        "/api/progress/stream/{id}": {
            "get": _op(
                "Live events (SSE); replays after Last-Event-ID",
                {"200": sse, "204": {"description": "the job finished and nothing was missed"}},
                params=[
                    {"name": "Last-Event-ID", "in": "header", "schema": {"type": "integer"}},
                    {"name": "lastEventId", "in": "query", "schema": {"type": "integer"}},
                ],
            )
        },
        "/api/jobs/{id}/retry-uploads": {
            "post": _op(
                "Re-queue dead and blocked items and upload them", {"202": _JSON_OK}, body="CredentialsBody"
            )
        },
        "/api/jobs/{id}/upload": {
            "post": _op(
                "Start the upload (manual mode, or after new credentials)",
                {"202": _JSON_OK},
                body="CredentialsBody",
            )
        },
        "/api/hardware": {"get": _op("Detected hardware", {"200": _JSON_OK}, job=False)},
        "/api/openapi.json": {"get": _op("This document", {"200": _JSON_OK}, job=False)},
        "/healthz": {"get": _op("Liveness", {"200": _JSON_OK}, job=False)},
        "/readyz": {
            "get": _op(
                "Readiness: store writable, relay alive, not draining",
                {"200": _JSON_OK, "503": _JSON_OK},
                job=False,
            )
        },
    }
    error = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message", "details"],
                "properties": {
                    "code": {"type": "string"},
                    "message": {"type": "string"},
                    "details": {"type": "array", "items": {"type": "object"}},
                },
            }
        },
    }
    schemas: dict[str, Any] = {"Error": error}
    for model in (JobRequest, CredentialsBody):
        schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "backlogd",
            "version": "0.1.0",
            "description": "Vision → agile backlog → Azure DevOps, live progress.",
        },
        "paths": paths,
        "components": {"schemas": schemas},
    }


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(spec())
