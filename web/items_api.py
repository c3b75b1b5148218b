"""REST handlers for editing a job's backlog: change, add, delete, resolve a conflict, regenerate."""

from __future__ import annotations

from aiohttp import web

from service.item_rules import ItemPatch, NewItemBody, RegenerateBody, ResolveBody
from web import auth
from web.bodies import read_json
from web.errors import BadRequest
from web.keys import SERVICES
from web.schemas import BacklogNode, ItemsRemoved, RegenerateAccepted, reply

AUTHOR_HEADER = "X-Backlogd-Author"
_AUTHOR_MAX = 80


def author_of(request: web.Request) -> str:
    """Who made an edit: the ``X-Backlogd-Author`` header, else how the request was authenticated."""
    raw = request.headers.get(AUTHOR_HEADER, "").strip()
    if raw:
        if len(raw) > _AUTHOR_MAX or not raw.isprintable():
            raise BadRequest(
                "invalid_request",
                f"{AUTHOR_HEADER} must be at most {_AUTHOR_MAX} printable characters",
                [{"field": AUTHOR_HEADER, "message": f"at most {_AUTHOR_MAX} printable characters"}],
            )
        return raw
    gate = request.app[auth.AUTH]
    if not gate.enabled:
        return "local"
    return "token" if gate.bearer_ok(request.headers.get("Authorization", "")) else "session"


def _ids(request: web.Request) -> tuple[str, str]:
    return request.match_info["id"], request.match_info["item"]


async def patch_item(request: web.Request) -> web.Response:
    job_id, item_id = _ids(request)
    patch = ItemPatch.model_validate(await read_json(request))
    item = await request.app[SERVICES].editor.patch(job_id, item_id, patch, author_of(request))
    return reply(BacklogNode.model_validate(item))


async def delete_item(request: web.Request) -> web.Response:
    job_id, item_id = _ids(request)
    in_ado = request.query.get("in_ado", "false").lower()
    if in_ado not in ("true", "false", "1", "0"):
        raise BadRequest(
            "invalid_request",
            "in_ado must be true or false",
            [{"field": "in_ado", "message": "not a boolean"}],
        )
    editor = request.app[SERVICES].editor
    done = await editor.delete(job_id, item_id, author_of(request), in_ado=in_ado in ("true", "1"))
    return reply(ItemsRemoved.model_validate(done))


async def add_item(request: web.Request) -> web.Response:
    job_id = request.match_info["id"]
    new = NewItemBody.model_validate(await read_json(request))
    item = await request.app[SERVICES].editor.add(job_id, new, author_of(request))
    location = {"Location": f"/api/jobs/{job_id}/items/{item['id']}"}
    return reply(BacklogNode.model_validate(item), status=201, headers=location)


async def resolve_item(request: web.Request) -> web.Response:
    job_id, item_id = _ids(request)
    body = ResolveBody.model_validate(await read_json(request))
    item = await request.app[SERVICES].editor.resolve(job_id, item_id, body.keep, author_of(request))
    return reply(BacklogNode.model_validate(item))


async def regenerate_item(request: web.Request) -> web.Response:
    job_id, item_id = _ids(request)
    body = RegenerateBody.model_validate(await read_json(request))
    await request.app[SERVICES].regenerator.start(job_id, item_id, body.instruction, author_of(request))
    return reply(RegenerateAccepted(job_id=job_id, item_id=item_id, status="regenerating"), status=202)
