"""`AdoClient.prepare`: project lookup, process discovery, fields per type, area/iteration nodes.

The per-type field requests run side by side and are all awaited, even when one fails: a sibling's
429 or Retry-After is then read and honoured by the gate instead of being lost to a cancellation.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import structlog

from outbox.ado import process
from outbox.ado.errors import AdoAuthError, AdoError, AdoForbidden, AdoNotFound, AdoPermanent
from outbox.ado.http import AdoHttp
from outbox.ado.types import AdoTarget, FieldInfo, ProcessProfile
from outbox.ado.urls import AdoUrls

log = structlog.get_logger("backlogd.ado")
_NON_WORK_ITEM_TYPES = frozenset({"Test Plan", "Test Suite"})  # created through the test plan API
NODE_PERMISSION = "Create child nodes"


def values(data: Any) -> list[dict[str, Any]]:
    """Collections come wrapped as {count, value}; tolerate a bare list."""
    items = data.get("value", []) if isinstance(data, dict) else data
    return [v for v in items if isinstance(v, dict)] if isinstance(items, list) else []


@dataclass(frozen=True)
class Discovered:
    """The profile plus whether discovery created area/iteration nodes (they may lag for a while)."""

    profile: ProcessProfile
    created_nodes: bool


async def project_info(http: AdoHttp, urls: AdoUrls, project: str) -> dict[str, Any]:
    try:
        data: dict[str, Any] = (await http.call("GET", urls.project_info())).data
    except AdoNotFound as exc:
        raise AdoNotFound(f"project {project} does not exist", exc.status) from None
    return data


async def type_fields(http: AdoHttp, urls: AdoUrls, wanted: list[str]) -> dict[str, dict[str, FieldInfo]]:
    """Fields of every wanted type; every request is awaited before the first error is raised."""
    results = await asyncio.gather(*(_fields(http, urls, name) for name in wanted), return_exceptions=True)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return dict(zip(wanted, results, strict=True))  # type: ignore[arg-type]


async def discover_profile(http: AdoHttp, urls: AdoUrls, target: AdoTarget) -> Discovered:
    project = await project_info(http, urls, target.project)
    project_name = str(project.get("name") or target.project)
    types = values((await http.call("GET", urls.work_item_types())).data)
    process_name, type_names = process.discover(process.enabled_type_names(types))
    wanted = sorted({t for t in type_names.values() if t and t not in _NON_WORK_ITEM_TYPES})
    fields = await type_fields(http, urls, wanted)
    team = str((project.get("defaultTeam") or {}).get("name", ""))
    nodes = NodeMaker(http, urls, target, project_name, team)
    area = await nodes.ensure("Areas", target.area_path)
    iteration = await nodes.ensure("Iterations", target.iteration_path)
    profile = ProcessProfile(
        process=process_name,
        project_id=str(project.get("id", "")),
        project_name=project_name,
        type_names=type_names,
        fields=fields,
        area_path=area,
        iteration_path=iteration,
        field_defaults={name: dict(d) for name in wanted if (d := target.defaults_for(name))},
    )
    return Discovered(profile, nodes.created)


async def _fields(http: AdoHttp, urls: AdoUrls, type_name: str) -> dict[str, FieldInfo]:
    return process.parse_fields(values((await http.call("GET", urls.type_fields(type_name))).data))


def node_segments(project_name: str, path: str) -> list[str]:
    """`Proj\\Team A\\Web` (or with '/' or a leading '\\') → ["Team A", "Web"]; the project root → []."""
    segments = [s.strip() for s in path.replace("/", "\\").split("\\") if s.strip()]
    if segments and segments[0].casefold() == project_name.casefold():
        segments = segments[1:]
    return segments


def node_permission_error(group: str, path: str, exc: AdoError) -> AdoForbidden:
    kind = "area" if group == "Areas" else "iteration"
    return AdoForbidden(
        f"no permission to create the {kind} path '{path}': the user of this PAT needs "
        f"'{NODE_PERMISSION}' on the {group} root (project administrators have it); ask an "
        f"administrator to create '{path}' or to grant the permission (HTTP {exc.status})",
        exc.status,
    )


class NodeMaker:
    """Creates missing area/iteration paths; a new iteration gets the configured dates and is added to
    the project's default team, so it shows on that team's sprint backlog."""

    def __init__(self, http: AdoHttp, urls: AdoUrls, target: AdoTarget, project: str, team: str) -> None:
        self._http, self._urls, self._target = http, urls, target
        self._project, self._team = project, team
        self.created = False

    async def ensure(self, group: str, path: str) -> str:
        """Create the classification node path when missing; returns the field value ('' = root)."""
        segments = node_segments(self._project, path)
        if not segments:
            return ""
        full = "\\".join([self._project, *segments])
        try:
            await self._http.call("GET", self._urls.node(group, segments))
        except AdoNotFound:
            for depth, name in enumerate(segments):
                await self._create(group, segments[:depth], name, full, leaf=depth == len(segments) - 1)
        return full

    async def _create(self, group: str, parent: list[str], name: str, full: str, *, leaf: bool) -> None:
        body: dict[str, Any] = {"name": name}
        start, finish = self._target.iteration_start, self._target.iteration_finish
        if group == "Iterations" and leaf and start and finish:
            body["attributes"] = {
                "startDate": f"{start}T00:00:00Z",
                "finishDate": f"{finish}T00:00:00Z",
            }
        try:
            reply = await self._http.call("POST", self._urls.node(group, parent), body, write=True)
        except AdoAuthError as exc:
            raise node_permission_error(group, full, exc) from None
        except AdoPermanent as exc:
            if exc.status != 409:  # 409 VS402371: the node already exists
                raise
            return
        self.created = True
        if group == "Iterations" and leaf:
            await self._add_to_team(str((reply.data or {}).get("identifier", "")), full)

    async def _add_to_team(self, identifier: str, full: str) -> None:
        if not identifier or not self._team:
            return
        try:
            await self._http.call(
                "POST", self._urls.team_iterations(self._team), {"id": identifier}, write=True
            )
        except AdoPermanent as exc:  # the items can still be uploaded; the sprint is just not on a board
            log.warning("iteration_not_added_to_team", path=full, team=self._team, error=str(exc))
