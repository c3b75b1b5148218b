"""`AdoClient.prepare`: project lookup, process discovery, fields per type, area/iteration nodes."""

from __future__ import annotations

import asyncio
from typing import Any

from outbox.ado import process
from outbox.ado.errors import AdoNotFound, AdoPermanent
from outbox.ado.http import AdoHttp
from outbox.ado.types import AdoTarget, FieldInfo, ProcessProfile
from outbox.ado.urls import AdoUrls

_NON_WORK_ITEM_TYPES = frozenset({"Test Plan", "Test Suite"})  # created through the test plan API


def values(data: Any) -> list[dict[str, Any]]:
    """Collections come wrapped as {count, value}; tolerate a bare list."""
    items = data.get("value", []) if isinstance(data, dict) else data
    return [v for v in items if isinstance(v, dict)] if isinstance(items, list) else []


async def discover_profile(http: AdoHttp, urls: AdoUrls, target: AdoTarget) -> ProcessProfile:
    try:
        project = (await http.call("GET", urls.project_info())).data
    except AdoNotFound as exc:
        raise AdoNotFound(f"project {target.project} does not exist", exc.status) from None
    project_name = str(project.get("name") or target.project)
    types = values((await http.call("GET", urls.work_item_types())).data)
    process_name, type_names = process.discover(process.enabled_type_names(types))
    wanted = sorted({t for t in type_names.values() if t and t not in _NON_WORK_ITEM_TYPES})
    try:
        async with asyncio.TaskGroup() as group:
            tasks = {name: group.create_task(_fields(http, urls, name)) for name in wanted}
    except ExceptionGroup as failed:  # callers classify AdoError, not groups: surface the first one
        raise failed.exceptions[0] from None
    area = await ensure_node(http, urls, "Areas", project_name, target.area_path)
    iteration = await ensure_node(http, urls, "Iterations", project_name, target.iteration_path)
    return ProcessProfile(
        process=process_name,
        project_id=str(project.get("id", "")),
        project_name=project_name,
        type_names=type_names,
        fields={name: task.result() for name, task in tasks.items()},
        area_path=area,
        iteration_path=iteration,
    )


async def _fields(http: AdoHttp, urls: AdoUrls, type_name: str) -> dict[str, FieldInfo]:
    return process.parse_fields(values((await http.call("GET", urls.type_fields(type_name))).data))


def node_segments(project_name: str, path: str) -> list[str]:
    """`Proj\\Team A\\Web` (or with '/' or a leading '\\') → ["Team A", "Web"]; the project root → []."""
    segments = [s.strip() for s in path.replace("/", "\\").split("\\") if s.strip()]
    if segments and segments[0].casefold() == project_name.casefold():
        segments = segments[1:]
    return segments


async def ensure_node(http: AdoHttp, urls: AdoUrls, group: str, project_name: str, path: str) -> str:
    """Create the classification node path when missing; returns the field value ('' = project root)."""
    segments = node_segments(project_name, path)
    if not segments:
        return ""
    try:
        await http.call("GET", urls.node(group, segments))
    except AdoNotFound:
        for depth, name in enumerate(segments):
            try:
                await http.call("POST", urls.node(group, segments[:depth]), {"name": name}, write=True)
            except AdoPermanent as exc:
                if exc.status != 409:  # 409 VS402371: the node already exists
                    raise
    return "\\".join([project_name, *segments])
