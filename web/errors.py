"""One middleware maps every error to a JSON body ``{"error": {"code", "message", "details"}}``.

JobNotFound                   404 job_not_found
BacklogExists                 409 backlog_exists (details: update_of and the earlier job's id)
JobStateError                 409 conflict
ItemNotFound                  404 item_not_found
ItemStateError                409 its code (e.g. children_uploaded)
InvalidInput                  400 invalid_request (details name the fields)
EditConflict                  409 conflict, with "ours" and "theirs" next to "error"
TargetRefused                 400 target_not_allowed (details: the field, the setting to change)
QueueFull                     429 too_many_jobs + Retry-After (checked in the insert's transaction)
VisionTooLarge                413 vision_too_large (the parsed, expanded vision)
VisionError                   400 bad_vision
pydantic ValidationError      400 invalid_request (details: one entry per bad field)
BadRequest (ours)             400 the code it carries
HTTPException (aiohttp)       its status (413 body too large, 404, 405, …)
anything else                 500 internal_error (logged; never a traceback in the response)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

import structlog
from aiohttp import web
from pydantic import ValidationError

from service.errors import (
    BacklogExists,
    EditConflict,
    InvalidInput,
    ItemNotFound,
    ItemStateError,
    JobNotFound,
    JobStateError,
    QueueFull,
    TargetRefused,
)
from stages.errors import VisionError, VisionTooLarge
from web.schemas import Error, ErrorInfo

log = structlog.get_logger("backlogd.web")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BadRequest(Exception):
    """A request the handler rejects before it reaches the service (bad query, bad JSON)."""

    def __init__(self, code: str, message: str, details: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.details = details or []


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    body = Error(error=ErrorInfo(code=code, message=message, details=details or []))
    return web.json_response(text=body.model_dump_json(), status=status, headers=headers)


def field_problems(exc: ValidationError) -> list[dict[str, Any]]:
    """One entry per bad field, by its dotted path in the body (union member tags left out)."""
    merged: dict[str, dict[str, Any]] = {}
    for err in exc.errors(include_url=False, include_input=False):
        path = [str(p) for p in err["loc"] if not _is_union_tag(p)]
        field = ".".join(path) or "(body)"
        if field in merged:
            merged[field]["message"] += f", or {err['msg'][0].lower()}{err['msg'][1:]}"
        else:
            merged[field] = {"field": field, "message": err["msg"], "type": err["type"]}
    return list(merged.values())


def _is_union_tag(part: object) -> bool:
    return isinstance(part, str) and (part in ("str", "int", "float", "bool") or "[" in part)


def _http_code(status: int) -> str:
    codes = {
        404: "not_found",
        405: "method_not_allowed",
        413: "body_too_large",
        415: "unsupported_media_type",
    }
    if status in codes:
        return codes[status]
    try:
        return HTTPStatus(status).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "http_error"


def _edit_error(exc: ItemNotFound | ItemStateError | InvalidInput | EditConflict) -> web.Response:
    if isinstance(exc, ItemNotFound):
        return error_response(404, "item_not_found", str(exc), [{"field": "item", "message": str(exc)}])
    if isinstance(exc, ItemStateError):
        return error_response(409, exc.code, str(exc))
    if isinstance(exc, InvalidInput):
        return error_response(400, "invalid_request", str(exc), exc.details)
    body = {
        "error": {"code": "conflict", "message": str(exc), "details": []},
        "ours": exc.ours,
        "theirs": exc.theirs,
    }
    return web.json_response(body, status=409)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except JobNotFound as exc:
        return error_response(404, "job_not_found", str(exc), [{"field": exc.field, "message": str(exc)}])
    except BacklogExists as exc:
        exists = [{"field": "update_of", "message": str(exc), "job_id": exc.job_id}]
        return error_response(409, "backlog_exists", str(exc), exists)
    except JobStateError as exc:
        return error_response(409, "conflict", str(exc))
    except (ItemNotFound, ItemStateError, InvalidInput, EditConflict) as exc:
        return _edit_error(exc)
    except TargetRefused as exc:
        refused = [{"field": exc.field, "message": str(exc)}]
        return error_response(400, "target_not_allowed", str(exc), refused)
    except QueueFull as exc:
        full: list[dict[str, Any]] = [{"field": "(client)", "message": str(exc), "limit": exc.limit}]
        return error_response(429, "too_many_jobs", str(exc), full, headers={"Retry-After": "30"})
    except VisionTooLarge as exc:
        too_big: list[dict[str, Any]] = [
            {"field": "vision", "message": str(exc), "limit": exc.limit, "size": exc.size}
        ]
        return error_response(413, "vision_too_large", str(exc), too_big)
    except VisionError as exc:
        return error_response(400, "bad_vision", str(exc), [{"field": "vision", "message": str(exc)}])
    except ValidationError as exc:
        problems = field_problems(exc)
        return error_response(400, "invalid_request", f"{len(problems)} invalid field(s)", problems)
    except BadRequest as exc:
        return error_response(400, exc.code, str(exc), exc.details)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise  # redirects and 304 are answers, not errors
        headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
        message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        return error_response(exc.status, _http_code(exc.status), message, headers=headers)
    except Exception:
        log.exception("http_handler_failed", path=request.path, method=request.method)
        return error_response(500, "internal_error", "internal error; see the service log")
