"""`$batch` (E7): inner PATCH creates/updates in request order, each answered `{code, headers, body}` with
`body` a JSON *string*. Temp ids (`/id` = "-1") resolve only within one batch, relation URLs included.
Atomicity follows `FaultConfig.batch_mode`: independent items, or one failure fails the whole bulk."""

from __future__ import annotations

import copy
import json
import re
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from aiohttp import web

from emulator import patching
from emulator.errors import AdoError, not_found_item, wrapped_exception
from emulator.routes_wit import PATCH_MEDIA, type_of
from emulator.routing import RouteMatch, Router, check_org, collection, org_url, read_json, state_of
from emulator.serialize import render_item
from emulator.state import EmulatorState, WorkItem

_ALLOWED_QUERY = frozenset({"api-version", "bypassrules", "suppressnotifications"})
_CREATE = re.compile(r"/(?P<project>[^/]+)/_apis/wit/workitems/\$(?P<type>[^/]+)", re.IGNORECASE)
_UPDATE = re.compile(r"/_apis/wit/workitems/(?P<id>\d+)", re.IGNORECASE)
_TEMP_URL = re.compile(r"(/_apis/wit/workItems/)(-\d+)$", re.IGNORECASE)
_JSON_HEADERS = {"Content-Type": "application/json; charset=utf-8"}


class _Unsupported(AdoError):
    def __init__(self) -> None:
        super().__init__(404, "UnsupportedBatchOperation", "Unsupported Batch operation.")


def _entry(code: int, body: Any) -> dict[str, Any]:
    return {"code": code, "headers": _JSON_HEADERS, "body": json.dumps(body)}


def _error_entry(err: AdoError) -> dict[str, Any]:
    return _entry(err.status, wrapped_exception(err.type_key, err.message, err.custom_properties))


def _query(uri: str) -> dict[str, str]:
    return {k.casefold(): v[-1] for k, v in parse_qs(urlsplit(uri).query).items()}


def _check_consistent(requests: list[dict[str, Any]]) -> None:
    for name in ("bypassRules", "suppressNotifications"):
        values = {_query(str(r.get("uri", ""))).get(name.casefold(), "false").casefold() for r in requests}
        if len(values) > 1:
            raise AdoError(
                400,
                "VssPropertyValidationException",
                f"The {name} parameter needs to be consistent on all requests in the batch.",
            )


def _resolve_temp_urls(ops: list[dict[str, Any]], temp_ids: dict[str, int]) -> list[dict[str, Any]]:
    resolved = []
    for op in ops:
        value = op.get("value")
        if isinstance(value, dict) and isinstance(value.get("url"), str):
            found = _TEMP_URL.search(value["url"])
            if found:
                if found.group(2) not in temp_ids:
                    raise AdoError(
                        400, "WorkItemLinkInvalidUrlException", f"Unknown temporary id {found.group(2)}."
                    )
                url = value["url"][: found.start(2)] + str(temp_ids[found.group(2)])
                op = {**op, "value": {**value, "url": url}}
        resolved.append(op)
    return resolved


def _temp_id(ops: list[dict[str, Any]]) -> str | None:
    return next((str(op.get("value")) for op in ops if str(op.get("path", "")).casefold() == "/id"), None)


def _run_one(state: EmulatorState, request: dict[str, Any], temp_ids: dict[str, int]) -> WorkItem:
    uri = str(request.get("uri", ""))
    if str(request.get("method", "")).upper() != "PATCH" or not set(_query(uri)) <= _ALLOWED_QUERY:
        raise _Unsupported()
    headers = {str(k).casefold(): str(v) for k, v in (request.get("headers") or {}).items()}
    if headers.get("content-type", "").split(";")[0].strip().casefold() != PATCH_MEDIA:
        raise AdoError(
            415, "VssRequestContentTypeNotSupportedException", f"Valid content types are: {PATCH_MEDIA}."
        )
    ops = _resolve_temp_urls(patching.parse_ops(request.get("body")), temp_ids)
    bypass = _query(uri).get("bypassrules", "").casefold() == "true"
    path = unquote(urlsplit(uri).path)
    if created := _CREATE.fullmatch(path):
        project = state.project(created.group("project"))
        if project is None:
            raise AdoError(
                404,
                "ProjectDoesNotExistWithNameException",
                f"TF200016: The following project does not exist: {created.group('project')}.",
            )
        item = patching.create_item(
            state, project, type_of(project, created.group("type")), ops, bypass=bypass, validate_only=False
        )
        temp = _temp_id(ops)
        if temp is not None:
            temp_ids[temp] = item.id
        return item
    if updated := _UPDATE.fullmatch(path):
        existing = state.items.get(int(updated.group("id")))
        if existing is None:
            raise not_found_item(int(updated.group("id")))
        project = state.project(existing.project)
        assert project is not None
        return patching.update_item(
            state,
            project,
            type_of(project, existing.type_name),
            existing,
            ops,
            bypass=bypass,
            validate_only=False,
        )
    raise _Unsupported()


def _check_unique(requests: list[dict[str, Any]]) -> None:
    seen: set[str] = set()
    for request in requests:
        body = request.get("body")
        updated = _UPDATE.fullmatch(unquote(urlsplit(str(request.get("uri", ""))).path))
        key = updated.group("id") if updated else (_temp_id(body) if isinstance(body, list) else None)
        if key is None:
            continue
        if key in seen:
            raise AdoError(
                400,
                "VssPropertyValidationException",
                "VS403357: Work items in the batch are expected to be unique, but found work item with "
                f"ID {key} in more than one request.",
            )
        seen.add(key)


async def run_batch(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    check_org(request, match.params)
    state = state_of(request)
    body = await read_json(request)
    if not isinstance(body, list) or not all(isinstance(r, dict) for r in body):
        raise AdoError(
            400, "VssPropertyValidationException", "The batch body must be a JSON array of requests."
        )
    if len(body) > state.config.max_batch_items:
        raise AdoError(
            400,
            "VssPropertyValidationException",
            f"A batch may hold at most {state.config.max_batch_items} requests.",
        )
    try:
        _check_consistent(body)
        _check_unique(body)
    except AdoError as err:
        return collection([_error_entry(err) for _ in body])
    whole = state.faults.batch_mode == "whole-bulk-fails"
    saved = (copy.deepcopy(state.items), state.next_id, state.creates_by_tag.copy()) if whole else None
    entries: list[dict[str, Any]] = []
    temp_ids: dict[str, int] = {}
    failed = False
    for inner in body:
        try:
            item = _run_one(state, inner, temp_ids)
            entries.append(_entry(200, render_item(state, org_url(request), item)))
        except AdoError as err:
            failed = True
            entries.append(_error_entry(err))
    if saved is not None and failed:
        state.items, state.next_id, state.creates_by_tag = saved
        bulk = AdoError(500, "WorkItemBatchException", "TF401321: Whole Bulk failed.")
        entries = [e if e["code"] != 200 else _error_entry(bulk) for e in entries]
    drop = state.faults.batch_missing_entries
    return collection(entries[: len(entries) - drop] if drop else entries)


def add_routes(router: Router) -> None:
    router.add("POST|PATCH", r"/{org}/_apis/wit/\$batch", run_batch, "batch")
