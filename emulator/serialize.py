"""WorkItem JSON as the service returns it: project-GUID-scoped URLs, relations only when present or
expanded, `_links.html` pointing at the emulator's human-readable edit page."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from emulator.state import EmulatorState, Relation, WorkItem


def item_url(state: EmulatorState, org_url: str, item_id: int) -> str:
    item = state.items.get(item_id)
    project = state.project(item.project) if item else None
    scope = f"/{project.id}" if project else ""
    return f"{org_url}{scope}/_apis/wit/workItems/{item_id}"


def render_relation(state: EmulatorState, org_url: str, relation: Relation) -> dict[str, Any]:
    return {
        "rel": relation.rel,
        "url": item_url(state, org_url, relation.target),
        "attributes": relation.attributes,
    }


def render_item(
    state: EmulatorState,
    org_url: str,
    item: WorkItem,
    *,
    fields: list[str] | None = None,
    relations: bool = True,
    links: bool = True,
) -> dict[str, Any]:
    """`fields` limits the returned fields (missing ones are omitted); `relations` includes the link list."""
    values = {k: v for k, v in item.fields.items() if k != "System.Id"}
    if fields is not None:  # System.Id / System.Rev appear only when asked for, as in the service
        wanted = {f.casefold() for f in fields}
        everything = {**values, "System.Id": item.id, "System.Rev": item.rev}
        values = {k: v for k, v in everything.items() if k.casefold() in wanted}
    url = item_url(state, org_url, item.id) if item.id else f"{org_url}/_apis/wit/workItems"
    body: dict[str, Any] = {"id": item.id, "rev": item.rev, "fields": values}
    if fields is None:
        body["multilineFieldsFormat"] = {}
    if relations and item.relations:
        body["relations"] = [render_relation(state, org_url, r) for r in item.relations]
    if links:
        project = state.project(item.project)
        scope = project.id if project else item.project
        body["_links"] = {
            "self": {"href": url},
            "workItemUpdates": {"href": f"{url}/updates"},
            "workItemRevisions": {"href": f"{url}/revisions"},
            "workItemComments": {"href": f"{url}/comments"},
            "html": {"href": f"{org_url}/{quote(item.project)}/_workitems/edit/{item.id}"},
            "workItemType": {"href": f"{org_url}/{scope}/_apis/wit/workItemTypes/{quote(item.type_name)}"},
            "fields": {"href": f"{org_url}/{scope}/_apis/wit/fields"},
        }
    body["url"] = url
    return body
