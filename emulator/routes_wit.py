"""Work item routes: create (E4), update (E5), get (E6), delete (E7) and WIQL (E8)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from emulator import patching, wiql
from emulator.errors import AdoError, not_found_item
from emulator.processes import TypeDef, find_type
from emulator.routing import (
    RouteMatch,
    Router,
    check_org,
    collection,
    flag,
    json_response,
    org_url,
    project_of,
    read_json,
    state_of,
)
from emulator.serialize import render_item
from emulator.state import EmulatorState, Project, WorkItem, now_iso

PATCH_MEDIA = "application/json-patch+json"
MAX_IDS = 200


def _require_patch_media(request: web.Request) -> None:
    if request.content_type.lower() != PATCH_MEDIA:
        raise AdoError(
            415,
            "VssRequestContentTypeNotSupportedException",
            f'The request indicated a Content-Type of "{request.content_type}" for method type '
            f'"{request.method}" which is not supported. Valid content types for this method are: '
            f"{PATCH_MEDIA}.",
        )


def type_of(project: Project, name: str) -> TypeDef:
    type_def = find_type(project.process, name, project.test_types)
    if type_def is None:
        raise AdoError(
            404,
            "WorkItemTypeNotFoundException",
            f"VS402323: Work item type {name} does not exist in project {project.id} or you do not have "
            "permission to access it.",
        )
    return type_def


def _expand_relations(request: web.Request) -> bool:
    return request.query.get("$expand", "").casefold() in {"relations", "all"}


async def create(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    project = project_of(request, match.params)
    _require_patch_media(request)
    type_def = type_of(project, match.params["type"])
    ops = patching.parse_ops(await read_json(request))
    state = state_of(request)
    item = patching.create_item(
        state,
        project,
        type_def,
        ops,
        bypass=flag(request, "bypassRules"),
        validate_only=flag(request, "validateOnly"),
    )
    return json_response(render_item(state, org_url(request), item))


def _item_in(state: EmulatorState, item_id: int, project: Project | None) -> WorkItem:
    item = state.items.get(item_id)
    if item is None or (project is not None and item.project != project.name):
        raise not_found_item(item_id)
    return item


def _optional_project(request: web.Request, match: RouteMatch) -> Project | None:
    if "project" in match.params:
        return project_of(request, match.params)
    check_org(request, match.params)
    return None


async def update(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    scope = _optional_project(request, match)
    _require_patch_media(request)
    state = state_of(request)
    item = _item_in(state, int(match.params["id"]), scope)
    project = state.project(item.project)
    assert project is not None  # items only exist in known projects
    ops = patching.parse_ops(await read_json(request))
    patching.update_item(
        state,
        project,
        type_of(project, item.type_name),
        item,
        ops,
        bypass=flag(request, "bypassRules"),
        validate_only=flag(request, "validateOnly"),
    )
    return json_response(render_item(state, org_url(request), item))


async def delete(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    """E7: to the recycle bin (``destroy=true``: gone for good); a GET then answers 404 like any
    missing item, and other items no longer show links to it."""
    scope = _optional_project(request, match)
    state = state_of(request)
    item = _item_in(state, int(match.params["id"]), scope)
    del state.items[item.id]
    for relation in list(item.relations):
        target = state.items.get(relation.target)
        if target is not None:
            target.relations = [r for r in target.relations if r.target != item.id]
    if not flag(request, "destroy"):
        state.recycle_bin[item.id] = item
    base = org_url(request)
    return json_response(
        {
            "id": item.id,
            "code": 200,
            "deletedBy": patching.EMULATOR_USER["displayName"],
            "deletedDate": now_iso(),
            "name": item.fields.get("System.Title", ""),
            "project": item.project,
            "type": item.type_name,
            "url": f"{base}/_apis/wit/recyclebin/{item.id}",
        }
    )


async def get_one(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    project = _optional_project(request, match)
    state = state_of(request)
    item = _item_in(state, int(match.params["id"]), project)
    fields = _fields_param(request.query.get("fields"), _expand_relations(request))
    return json_response(
        render_item(state, org_url(request), item, fields=fields, relations=_expand_relations(request))
    )


def _fields_param(raw: str | list[str] | None, expand: bool) -> list[str] | None:
    if not raw:
        return None
    if expand:
        raise AdoError(
            400,
            "VssPropertyValidationException",
            "The expand parameter can not be used with the fields parameter.",
        )
    return [f.strip() for f in raw.split(",")] if isinstance(raw, str) else raw


def _render_many(
    request: web.Request,
    project: Project | None,
    ids: list[int],
    fields: list[str] | None,
    expand: bool,
    omit: bool,
) -> web.Response:
    if len(ids) > MAX_IDS:
        raise AdoError(
            400,
            "WorkItemsExceedsLimitException",
            f"VS403474: You requested {len(ids)} work items which exceeds the limit of {MAX_IDS}",
        )
    state = state_of(request)
    values: list[Any] = []
    for item_id in ids:
        try:
            item = _item_in(state, item_id, project)
        except AdoError:
            if not omit:
                raise
            values.append(None)
            continue
        values.append(
            render_item(state, org_url(request), item, fields=fields, relations=expand, links=False)
        )
    return collection(values)


def _parse_ids(raw: str) -> list[int]:
    try:
        return [int(part) for part in raw.split(",") if part.strip()]
    except ValueError as exc:
        raise AdoError(400, "VssPropertyValidationException", f"Invalid ids: {raw}") from exc


async def get_many(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    project = _optional_project(request, match)
    expand = _expand_relations(request)
    ids = _parse_ids(request.query.get("ids", ""))
    if not ids:
        raise AdoError(400, "VssPropertyValidationException", "The ids parameter is required.")
    fields = _fields_param(request.query.get("fields"), expand)
    omit = request.query.get("errorPolicy", "").casefold() == "omit"
    return _render_many(request, project, ids, fields, expand, omit)


async def get_batch(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    project = _optional_project(request, match)
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("ids"), list):
        raise AdoError(400, "VssPropertyValidationException", "The ids parameter is required.")
    expand = str(body.get("$expand", "")).casefold() in {"relations", "all"}
    fields = body.get("fields") or None
    if fields and expand:
        _fields_param("x", True)
    omit = str(body.get("errorPolicy", "")).casefold() == "omit"
    return _render_many(request, project, [int(i) for i in body["ids"]], fields, expand, omit)


async def run_wiql(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    project = _optional_project(request, match)
    body = await read_json(request)
    text = body.get("query") if isinstance(body, dict) else None
    if not isinstance(text, str) or len(text) > 32_768:
        raise AdoError(400, "QueryException", 'The query body must be JSON {"query": "..."} (≤32,768 chars).')
    try:
        query = wiql.parse(text)
    except wiql.WiqlError as exc:
        raise AdoError(
            400, "QuerySyntaxException", f"TF51006: The query statement is invalid. {exc}"
        ) from exc
    if query.uses_project_macro and project is None:
        raise AdoError(
            400,
            "QueryException",
            "Queries with an @project clause can only be executed on the project specific WIQL endpoint.",
        )
    state = state_of(request)
    name = project.name if project else None
    visible_before = state.clock() - state.faults.wiql_lag_seconds
    found = [
        i
        for i in state.items.values()
        if i.created_at <= visible_before and wiql.matches(query.where, i.fields, name)
    ]
    if len(found) > state.config.max_wiql_results:
        raise AdoError(
            400,
            "WorkItemTrackingQueryResultSizeLimitExceededException",
            "VS402337: The number of work items returned exceeds the size limit of "
            f"{state.config.max_wiql_results}.",
        )
    _, descending = wiql.sort_key(query.order_by)
    ids = sorted((i.id for i in found), reverse=descending)
    top = request.query.get("$top")
    if top and top.isdigit():
        ids = ids[: int(top)]
    base = org_url(request)
    column = {"referenceName": "System.Id", "name": "ID", "url": f"{base}/_apis/wit/fields/System.Id"}
    return json_response(
        {
            "queryType": "flat",
            "queryResultType": "workItem",
            "asOf": now_iso(),
            "columns": [column],
            "sortColumns": [{"field": column, "descending": descending}],
            "workItems": [{"id": i, "url": f"{base}/_apis/wit/workItems/{i}"} for i in ids],
        }
    )


def add_routes(router: Router) -> None:
    org, proj = "/{org}", "/{org}/{project}"
    router.add("POST|PATCH", proj + r"/_apis/wit/workitems/\$(?P<type>[^/]+)", create, "create")
    router.add("PATCH", proj + r"/_apis/wit/workitems/(?P<id>\d+)", update, "update")
    router.add("PATCH", org + r"/_apis/wit/workitems/(?P<id>\d+)", update, "update")
    for scope in (proj, org):
        router.add("DELETE", scope + r"/_apis/wit/workitems/(?P<id>\d+)", delete, "update")
    for scope in (proj, org):
        router.add("GET", scope + r"/_apis/wit/workitems/(?P<id>\d+)", get_one, "get")
        router.add("GET", scope + r"/_apis/wit/workitems", get_many, "get")
        router.add("POST", scope + r"/_apis/wit/workitemsbatch", get_batch, "get")
    router.add("POST", proj + "/{team}/_apis/wit/wiql", run_wiql, "wiql")
    router.add("POST", proj + "/_apis/wit/wiql", run_wiql, "wiql")
    router.add("POST", org + "/_apis/wit/wiql", run_wiql, "wiql")
