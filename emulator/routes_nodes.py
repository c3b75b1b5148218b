"""Classification nodes (E9): areas and iterations. Create answers 201 + Location; a duplicate sibling
name is 409 VS402371; posting `{"id": n}` moves an existing node; new nodes are valid paths at once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from emulator.errors import AdoError
from emulator.routing import (
    RouteMatch,
    Router,
    collection,
    json_response,
    org_url,
    project_of,
    read_json,
    state_of,
)
from emulator.state import EmulatorState, Node, Project

GROUPS = {"areas": ("area", "Area", "Areas"), "iterations": ("iteration", "Iteration", "Iterations")}


def _group(name: str) -> tuple[str, str, str]:
    group = GROUPS.get(name.casefold())
    if group is None:
        raise AdoError(
            404, "WorkItemTrackingTreeNodeNotFoundException", f"TF200014: Structure group {name} not found."
        )
    return group


def _render(
    request: web.Request, project: Project, node: Node, segments: list[str], depth: int
) -> dict[str, Any]:
    structure, singular, plural = GROUPS["areas" if node.structure == "area" else "iterations"]
    suffix = "".join(f"/{s}" for s in segments)
    url = f"{org_url(request)}/{project.id}/_apis/wit/classificationNodes/{plural}{suffix}"
    body: dict[str, Any] = {
        "id": node.id,
        "identifier": node.identifier,
        "name": node.name,
        "structureType": structure,
        "hasChildren": bool(node.children),
        "path": "\\" + "\\".join([project.name, singular, *segments]),
        "_links": {"self": {"href": url}},
        "url": url,
    }
    if node.attributes:
        body["attributes"] = node.attributes
    if depth > 0 and node.children:
        body["children"] = [
            _render(request, project, c, [*segments, c.name], depth - 1) for c in node.children
        ]
    return body


def _segments(match: RouteMatch) -> list[str]:
    return [s for s in match.params.get("path", "").split("/") if s]


def _find(state: EmulatorState, project: Project, structure: str, segments: list[str]) -> Node:
    node = state.find_node(project.name, structure, segments)
    if node is None:
        raise AdoError(
            404,
            "WorkItemTrackingTreeNodeNotFoundException",
            f"VS402485: The node '{'/'.join(segments)}' does not exist.",
        )
    return node


def _depth(request: web.Request) -> int:
    raw = request.query.get("$depth", "0")
    return int(raw) if raw.isdigit() else 0


async def get_roots(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    project = project_of(request, match.params)
    state = state_of(request)
    roots = [state.nodes[(project.name, s)] for s in ("area", "iteration")]
    return collection([_render(request, project, r, [], _depth(request)) for r in roots])


async def get_node(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    project = project_of(request, match.params)
    structure = _group(match.params["group"])[0]
    segments = _segments(match)
    node = _find(state_of(request), project, structure, segments)
    return json_response(_render(request, project, node, segments, _depth(request)))


def _normalise_dates(attributes: Any) -> dict[str, Any]:
    if not isinstance(attributes, dict):
        return {}
    result = dict(attributes)
    for key in ("startDate", "finishDate"):
        value = result.get(key)
        if isinstance(value, str):
            try:
                parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError as exc:
                raise AdoError(400, "VssPropertyValidationException", f"Invalid date {value}.") from exc
            parsed = parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
            result[key] = parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return result


def _detach(root: Node, node: Node) -> None:
    for child in root.children:
        if child is node:
            root.children.remove(node)
            return
        _detach(child, node)


def _by_id(root: Node, node_id: int) -> Node | None:
    if root.id == node_id:
        return root
    return next((n for c in root.children if (n := _by_id(c, node_id)) is not None), None)


async def create_node(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    project = project_of(request, match.params)
    state = state_of(request)
    structure = _group(match.params["group"])[0]
    parent_segments = _segments(match)
    parent = _find(state, project, structure, parent_segments)
    if not state.config.node_admin:  # checked before the body: a user without the right learns nothing
        raise AdoError(
            403,
            "AccessCheckException",
            f"Access Denied: the user needs the following permission(s) on the resource "
            f"{_group(match.params['group'])[2]}/{'/'.join(parent_segments)} to perform this action: "
            "Create child nodes",
        )
    body = await read_json(request)
    if not isinstance(body, dict):
        raise AdoError(400, "VssPropertyValidationException", "The node body is required.")
    root = state.nodes[(project.name, structure)]
    if "id" in body:  # "create or update": an id moves that node under the parent
        node = _by_id(root, int(body["id"]))
        if node is None or node is root:
            raise AdoError(404, "WorkItemTrackingTreeNodeNotFoundException", f"Node {body['id']} not found.")
        _detach(root, node)
    else:
        name = body.get("name")
        if not isinstance(name, str) or not name.strip() or any(c in name for c in '\\/$?*:"&<>#|+'):
            raise AdoError(
                400, "ClassificationNodeInvalidNameException", f"VS402370: Invalid node name {name}."
            )
        if parent.child(name) is not None:
            raise AdoError(
                409,
                "ClassificationNodeDuplicateNameException",
                f"VS402371: Classification node name {name} is already in use by a different child of parent "
                f"classification node {parent.identifier}. Choose a different name and try again.",
            )
        node = state.new_node(name.strip(), structure, _normalise_dates(body.get("attributes")))
    parent.children.append(node)
    rendered = _render(request, project, node, [*parent_segments, node.name], 0)
    return json_response(rendered, status=201, headers={"Location": rendered["url"]})


def add_routes(router: Router) -> None:
    base = "/{org}/{project}/_apis/wit/classificationnodes"
    router.add("GET", base, get_roots, "nodes")
    router.add("GET", base + "/{group}(?:/(?P<path>.+?))?", get_node, "nodes")
    router.add("POST", base + "/{group}(?:/(?P<path>.+?))?", create_node, "nodes")
    router.add(
        "POST", "/{org}/{project}/{team}/_apis/work/teamsettings/iterations", assign_team_iteration, "nodes"
    )


async def assign_team_iteration(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    """E10: a sprint shows on a team's backlog once assigned by its node identifier."""
    project = project_of(request, match.params)
    state = state_of(request)
    body = await read_json(request)
    identifier = str(body.get("id", "")) if isinstance(body, dict) else ""
    found = _by_identifier(state.nodes[(project.name, "iteration")], identifier, [])
    if found is None:
        raise AdoError(
            400, "InvalidTeamSettingsIterationException", f"TF400499: Iteration {identifier} not found."
        )
    node, segments = found
    assigned = state.team_iterations.setdefault(f"{project.name}/{match.params['team']}", [])
    if node.identifier not in assigned:
        assigned.append(node.identifier)
    path = "\\".join([project.name, *segments])
    return json_response(
        {"id": node.identifier, "name": node.name, "path": path, "attributes": node.attributes, "url": ""}
    )


def _by_identifier(root: Node, identifier: str, segments: list[str]) -> tuple[Node, list[str]] | None:
    if root.identifier == identifier:
        return root, segments
    for child in root.children:
        found = _by_identifier(child, identifier, [*segments, child.name])
        if found is not None:
            return found
    return None
