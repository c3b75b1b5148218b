"""``GET /api/openapi.json``: the API described by hand, request bodies from the pydantic models.

With ``server.api_token_env`` set, every ``/api/*`` operation but ``/api/session`` and ``/metrics``
need the bearer token or the session cookie (``security``); errors are always the ``Error`` schema."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from service.item_rules import ItemPatch, NewItemBody, RegenerateBody, ResolveBody
from service.requests import JobRequest
from web.auth import COOKIE, LoginBody
from web.jobs_api import CredentialsBody, UploadBody
from web.quality_api import AdviceBody
from web.targets_api import TargetCheckBody

_JOB_ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "format": "uuid"}}
_ERROR = {
    "description": "error",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_JSON_OK = {"description": "OK", "content": {"application/json": {"schema": {"type": "object"}}}}
_SSE_EVENT = {  # one event of the stream: `data:` is the JSON payload as text
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"enum": ["progress", "item", "upload", "stage", "edit", "final", "error", "shutdown"]},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}
_RETRY_AFTER = {"Retry-After": {"description": "seconds to wait", "schema": {"type": "string"}}}
_LIMITED = {
    "401": {**_ERROR, "description": "the API token is required (server.api_token_env is set)"},
    "403": {**_ERROR, "description": "a state-changing request from another Origin"},
    "415": {**_ERROR, "description": "a body that is not Content-Type: application/json"},
    "421": {**_ERROR, "description": "a Host outside server.allowed_hosts"},
    "413": {**_ERROR, "description": "the body or the vision is over its limit (details give the limit)"},
    "429": {**_ERROR, "description": "too many requests, jobs or streams", "headers": _RETRY_AFTER},
    "503": {**_ERROR, "description": "the service is shutting down", "headers": _RETRY_AFTER},
}
_ITEM_ID = {"name": "item", "in": "path", "required": True, "schema": {"type": "string"}}
_AUTHOR = {
    "name": "X-Backlogd-Author",
    "in": "header",
    "description": "who made the edit (else token, session or local)",
    "schema": {"type": "string", "maxLength": 80},
}
_EVENT_ID = {"type": "integer", "minimum": 0, "maximum": 2**53}  # outside: 400 before the stream
_OPEN: list[dict[str, list[str]]] = [{}]  # no token needed, even when auth is on


def _op(
    summary: str,
    responses: dict[str, Any],
    *,
    job: bool = True,
    body: str | None = None,
    params: list[dict[str, Any]] | None = None,
    security: list[dict[str, list[str]]] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "parameters": ([_JOB_ID] if job else []) + (params or []),
        "responses": {**responses, "default": _ERROR},
    }
    if body:
        op["requestBody"] = {
            "required": body
            in (
                "JobRequest",
                "LoginBody",
                "AdviceBody",
                "ItemPatch",
                "NewItemBody",
                "ResolveBody",
                "RegenerateBody",
            ),
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{body}"}}},
        }
    if security is not None:
        op["security"] = security
    return op


def _json(ref: str, description: str = "OK") -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
    }


_JOB_OPS = {
    "GetJob": ("/api/jobs/{id}", "get"),
    "CancelJob": ("/api/jobs/{id}", "delete"),
    "GetBacklog": ("/api/jobs/{id}/backlog", "get"),
    "ExportJob": ("/api/jobs/{id}/export", "get"),
    "GetProgress": ("/api/jobs/{id}/progress", "get"),
    "GetQuality": ("/api/jobs/{id}/quality", "get"),
    "StreamProgress": ("/api/progress/stream/{id}", "get"),
    "RetryUploads": ("/api/jobs/{id}/retry-uploads", "post"),
    "StartUpload": ("/api/jobs/{id}/upload", "post"),
}


def _created() -> dict[str, Any]:
    """The 202 of POST /api/jobs, with links from the new job's id to every per-job operation."""
    links = {
        name: {"operationRef": _ref(path, method), "parameters": {"id": "$response.body#/job_id"}}
        for name, (path, method) in _JOB_OPS.items()
    }
    return {**_json("JobCreated", "accepted: the job runs (or waits for a slot)"), "links": links}


def _ref(path: str, method: str) -> str:
    return "#/paths/" + path.replace("~", "~0").replace("/", "~1") + "/" + method


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
        "content": {"text/event-stream": {"schema": _SSE_EVENT}},
    }
    paths: dict[str, Any] = {
        "/api/jobs": {
            "post": _op(
                "Create and start a job (only `vision` is required). A vision an earlier job (not failed or"
                " cancelled) already made for the same organization and project is refused with 409"
                " `backlog_exists` (details[0]: field `update_of`, `job_id` of the latest such job) unless"
                " the body says `update_of` (update that backlog: items are matched to its work items) or"
                " `new_copy: true`",
                {
                    "202": _created(),
                    "400": {**_ERROR, "description": "an invalid field; `update_of` not updatable"},
                    "404": {**_ERROR, "description": "`update_of` names no job (details name the field)"},
                    "409": {**_ERROR, "description": "backlog_exists: say update_of or new_copy"},
                    **_LIMITED,
                },
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
                {"200": _json("JobList"), "304": {"description": "not modified"}},
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
                "The backlog tree with each item's upload state, ADO id, URL, revision and error; `match`"
                " (a re-run's match to `update_of`: unchanged, updated, new, vanished; else null)",
                {"200": _JSON_OK},
            )
        },
        "/api/jobs/{id}/export": {
            "get": _op(
                "Download the backlog. json: `format`, `job` (id, title, status, vision, `settings` = the"
                " options it ran with), the tree (`epics`… with `upload.rev` and `match`), `test_plans`,"
                " `test_suites` (`for_id`: the feature or story) and `traceability` (`sentences` with"
                " `covered_by` story ids, `uncovered` sentence ids); csv: Azure Boards import; md: text",
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
        "/api/jobs/{id}/quality": {
            "get": _op(
                "The backlog's quality model: each metric, its target and the items that fell short",
                {"200": _json("Quality")},
            )
        },
        "/api/vision/advice": {
            "post": _op(
                "What a vision lacks before any token is spent (advice, never a refusal)",
                {"200": _json("Advice"), **_LIMITED},
                job=False,
                body="AdviceBody",
            )
        },
        "/api/progress/stream/{id}": {
            "get": _op(
                "Live events (SSE); replays after Last-Event-ID",
                {
                    "200": sse,
                    "204": {"description": "the job finished and nothing was missed"},
                    "429": _LIMITED["429"],
                },
                params=[
                    {"name": "Last-Event-ID", "in": "header", "schema": _EVENT_ID},
                    {"name": "lastEventId", "in": "query", "schema": _EVENT_ID},
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
                "Start the upload (manual or review mode: all, or the subtrees of epic_ids; or after new "
                "credentials)",
                {"202": _JSON_OK},
                body="UploadBody",
            )
        },
        "/api/jobs/{id}/items": {
            "post": _op(
                "Add an item under parent_id (its kind must be a child kind of the parent's)",
                {"201": _json("BacklogItem", "the new item as the backlog shows it")},
                body="NewItemBody",
                params=[_AUTHOR],
            )
        },
        "/api/jobs/{id}/items/{item}": {
            "patch": _op(
                "Edit an item; an uploaded one becomes an update of its work item",
                {
                    "200": _json("BacklogItem", "the item as the backlog shows it"),
                    "409": _json("EditConflict", "changed in Azure DevOps since our upload: nothing saved"),
                },
                body="ItemPatch",
                params=[_ITEM_ID, _AUTHOR],
            ),
            "delete": _op(
                "Delete an item and its subtree from the backlog; with in_ado=true also close or remove its "
                "work items (azure_devops.delete_action)",
                {"200": _JSON_OK},
                params=[_ITEM_ID, _AUTHOR, {"name": "in_ado", "in": "query", "schema": {"type": "boolean"}}],
            ),
        },
        "/api/jobs/{id}/items/{item}/resolve": {
            "post": _op(
                "Resolve a conflict: keep ours (written over theirs) or theirs (adopted, nothing written)",
                {"200": _json("BacklogItem")},
                body="ResolveBody",
                params=[_ITEM_ID, _AUTHOR],
            )
        },
        "/api/jobs/{id}/items/{item}/regenerate": {
            "post": _op(
                "Regenerate the item's children with an instruction (409 children_uploaded once they are in "
                "Azure DevOps); the result arrives as an edit event",
                {"202": _JSON_OK},
                body="RegenerateBody",
                params=[_ITEM_ID, _AUTHOR],
            )
        },
        "/api/targets/check": {
            "post": _op(
                "Pre-flight of an Azure DevOps target (connection, PAT, project, process, fields, rights); "
                "writes nothing",
                {"200": _json("TargetCheck")},
                job=False,
                body="TargetCheckBody",
            )
        },
        "/api/hardware": {"get": _op("Detected hardware", {"200": _JSON_OK}, job=False)},
        "/api/openapi.json": {"get": _op("This document", {"200": _JSON_OK}, job=False)},
        "/api/session": {
            "get": _op(
                "Whether a login is needed and held", {"200": _json("Session")}, job=False, security=_OPEN
            ),
            "post": _op(
                "Log in with the API token: sets an HttpOnly, SameSite=Strict session cookie",
                {"200": _json("Session"), "429": _LIMITED["429"]},
                job=False,
                body="LoginBody",
                security=_OPEN,
            ),
            "delete": _op("Log out: clears the cookie", {"200": _json("Session")}, job=False, security=_OPEN),
        },
        "/healthz": {"get": _op("Liveness", {"200": _JSON_OK}, job=False, security=_OPEN)},
        "/readyz": {
            "get": _op(
                "Readiness: store writable, relay alive, not draining",
                {"200": _json("Readiness"), "503": _json("Readiness", "not ready")},
                job=False,
                security=_OPEN,
            )
        },
        "/metrics": {
            "get": _op(
                "Prometheus metrics (needs the token when auth is on)",
                {
                    "200": {
                        "description": "Prometheus text format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    }
                },
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
    schemas: dict[str, Any] = {"Error": error, **_RESPONSES}
    bodies = (JobRequest, CredentialsBody, UploadBody, LoginBody, TargetCheckBody, AdviceBody)
    for model in (*bodies, ItemPatch, NewItemBody, ResolveBody, RegenerateBody):
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
        "components": {"schemas": schemas, "securitySchemes": _SECURITY},
        # Without a token configured the API is open ({}); with one, either scheme works.
        "security": [{}, {"bearerAuth": []}, {"sessionCookie": []}],
    }


_SECURITY = {
    "bearerAuth": {"type": "http", "scheme": "bearer", "description": "the token server.api_token_env names"},
    "sessionCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": COOKIE,
        "description": "from POST /api/session",
    },
}
_LINKS = {"type": "object", "additionalProperties": {"type": "string"}}
_UPLOAD_STATE = {
    "type": "object",
    "required": ["state", "ado_id", "url", "rev", "error"],
    "properties": {
        "state": {"type": "string"},
        "ado_id": {"type": ["integer", "null"]},
        "url": {"type": ["string", "null"]},
        "rev": {"type": ["integer", "null"], "description": "the work item revision we last wrote"},
        "error": {"type": ["string", "null"]},
    },
}
_RESPONSES: dict[str, Any] = {
    "BacklogItem": {
        "type": "object",
        "required": ["id", "type", "title", "upload", "match", "conflict"],
        "properties": {
            "id": {"type": "string"},
            "type": {"type": "string"},
            "parent_id": {"type": ["string", "null"]},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "acceptance_criteria": {"type": "array", "items": {"type": "string"}},
            "story_points": {"type": "integer"},
            "priority": {"type": "integer"},
            "estimate_hours": {"type": "number"},
            "steps": {"type": "array", "items": {"type": "object"}},
            "sources": {"type": "array", "items": {"type": "string"}},
            "upload": _UPLOAD_STATE,
            "match": {"type": ["string", "null"]},
            "conflict": {
                "type": ["object", "null"],
                "description": '{"ours": {...}, "theirs": {..., "rev", "changed_by"}}',
            },
        },
    },
    "EditConflict": {
        "type": "object",
        "required": ["error", "ours", "theirs"],
        "properties": {
            "error": {"type": "object"},
            "ours": {"type": "object"},
            "theirs": {"type": "object"},
        },
    },
    "JobCreated": {
        "type": "object",
        "required": ["job_id", "links"],
        "properties": {"job_id": {"type": "string", "format": "uuid"}, "links": _LINKS},
    },
    "JobSummary": {
        "type": "object",
        "required": ["job_id", "status", "links"],
        "properties": {
            "job_id": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "string"},
            "error": {"type": ["string", "null"]},
            "created_at": {"type": "number"},
            "updated_at": {"type": "number"},
            "finished_at": {"type": ["number", "null"]},
            "last_seq": {"type": "integer"},
            "target": {"type": ["string", "null"]},
            "upload_mode": {"type": ["string", "null"]},
            "links": _LINKS,
        },
    },
    "JobList": {
        "type": "object",
        "required": ["jobs"],
        "properties": {"jobs": {"type": "array", "items": {"$ref": "#/components/schemas/JobSummary"}}},
    },
    "Quality": {
        "type": "object",
        "required": ["job_id", "status", "available", "quality"],
        "properties": {
            "job_id": {"type": "string"},
            "status": {"type": "string"},
            "available": {"type": "boolean", "description": "false until generation has finished"},
            "quality": {"type": ["object", "null"], "description": "ok, line, metrics[] with offenders[]"},
            "links": _LINKS,
        },
    },
    "Advice": {
        "type": "object",
        "required": ["advice", "sentences"],
        "properties": {
            "advice": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["code", "message", "sentences"],
                    "properties": {
                        "code": {"enum": ["no_target_users", "no_success_metric", "vague_sentence"]},
                        "message": {"type": "string"},
                        "sentences": {"type": "array", "items": {"type": "string"}},
                    },
                },
            },
            "sentences": {"type": "integer"},
        },
    },
    "Session": {
        "type": "object",
        "required": ["auth_required", "authenticated"],
        "properties": {"auth_required": {"type": "boolean"}, "authenticated": {"type": "boolean"}},
    },
    "TargetCheck": {
        "type": "object",
        "required": ["ok", "fatal", "problems"],
        "properties": {
            "ok": {"type": "boolean", "description": "true only when nothing is wrong"},
            "fatal": {"type": "boolean", "description": "a job to this target would not start"},
            "organization_url": {"type": "string"},
            "project": {"type": "string"},
            "process": {"type": ["string", "null"]},
            "qa_available": {"type": "boolean"},
            "passed": {"type": "array", "items": {"type": "string"}},
            "problems": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["code", "message", "fix", "fatal"],
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "fix": {"type": "string"},
                        "fatal": {"type": "boolean"},
                        "disables_qa": {"type": "boolean"},
                    },
                },
            },
        },
    },
    "Readiness": {
        "type": "object",
        "required": ["status", "checks"],
        "properties": {
            "status": {"enum": ["ready", "not_ready"]},
            "checks": {"type": "object", "additionalProperties": {"type": "boolean"}},
            "sse_clients": {"type": "integer"},
        },
    },
}


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(spec())
