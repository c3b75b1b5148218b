"""Minimal HTML pages for humans: one work item (`_workitems/edit/{id}`) and the backlog tree."""

from __future__ import annotations

import html

from aiohttp import web

from emulator.routing import RouteMatch, Router, check_org, state_of
from emulator.state import EmulatorState, WorkItem

_STYLE = (
    "body{font-family:sans-serif;max-width:60rem;margin:2rem auto}td{padding:.2rem .6rem;vertical-align:top}"
)


def _page(title: str, body: str) -> web.Response:
    text = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{_STYLE}</style></head><body>{body}</body></html>"
    )
    return web.Response(text=text, content_type="text/html")


def _shown(value: object) -> str:
    """A field value as a person reads it: identity fields (System.CreatedBy, AssignedTo) are objects in
    the REST shape; the page shows their displayName (and unique name), not the raw dict."""
    if isinstance(value, dict):
        name = value.get("displayName") or value.get("uniqueName") or ""
        unique = value.get("uniqueName")
        return f"{name} <{unique}>" if unique and unique != name else str(name)
    return str(value)


def _link(org: str, item: WorkItem) -> str:
    label = html.escape(f"{item.type_name} {item.id}: {item.fields.get('System.Title', '')}")
    return f"<a href='/{org}/{html.escape(item.project)}/_workitems/edit/{item.id}'>{label}</a>"


def _children(state: EmulatorState, parent_id: int | None, project: str) -> list[WorkItem]:
    return [
        i
        for i in state.items.values()
        if i.parent_id == parent_id and i.project.casefold() == project.casefold()
    ]


async def edit_page(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    check_org(request, match.params)
    state = state_of(request)
    org = state.config.organization
    item = state.items.get(int(match.params["id"]))
    if item is None:
        return _page("Not found", f"<h1>Work item {html.escape(match.params['id'])} does not exist</h1>")
    rows = "".join(
        f"<tr><td>{html.escape(k)}</td><td>{html.escape(_shown(v))}</td></tr>"
        for k, v in sorted(item.fields.items())
        if k not in {"System.Description", "Microsoft.VSTS.Common.AcceptanceCriteria"}
    )
    parent = state.items.get(item.parent_id) if item.parent_id else None
    children = "".join(f"<li>{_link(org, c)}</li>" for c in _children(state, item.id, item.project))
    title = html.escape(str(item.fields.get("System.Title", "")))
    criteria = item.fields.get("Microsoft.VSTS.Common.AcceptanceCriteria", "")
    body = (
        f"<p><a href='/{org}/{html.escape(item.project)}/_backlogs'>Backlog</a></p>"
        f"<h1>{html.escape(item.type_name)} {item.id}: {title}</h1>"
        f"<p>State: {html.escape(str(item.fields.get('System.State', '')))}</p>"
        f"<p>Parent: {_link(org, parent) if parent else 'none'}</p>"
        # Description and acceptance criteria are HTML fields: shown as the service would render them.
        f"<h2>Description</h2><div>{item.fields.get('System.Description', '')}</div>"
        f"<h2>Acceptance criteria</h2><div>{criteria}</div>"
        f"<h2>Children</h2><ul>{children}</ul><h2>Fields</h2><table>{rows}</table>"
    )
    return _page(f"{item.type_name} {item.id}", body)


def _tree(state: EmulatorState, org: str, project: str, parent_id: int | None) -> str:
    items = _children(state, parent_id, project)
    if not items:
        return ""
    return (
        "<ul>"
        + "".join(f"<li>{_link(org, i)}{_tree(state, org, project, i.id)}</li>" for i in items)
        + "</ul>"
    )


async def backlog_page(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    check_org(request, match.params)
    state = state_of(request)
    project = state.project(match.params["project"])
    if project is None:
        return _page("Not found", "<h1>Project not found</h1>")
    tree = _tree(state, state.config.organization, project.name, None) or "<p>No work items yet.</p>"
    return _page(f"{project.name} backlog", f"<h1>{html.escape(project.name)} backlog</h1>{tree}")


async def index_page(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    state = state_of(request)
    org = state.config.organization
    links = "".join(
        f"<li><a href='/{org}/{html.escape(p.name)}/_backlogs'>{html.escape(p.name)}</a> ({p.process})</li>"
        for p in state.projects.values()
    )
    return _page("Azure DevOps emulator", f"<h1>{html.escape(org)}</h1><ul>{links}</ul>")


def add_routes(router: Router) -> None:
    router.add("GET", "/", index_page, "browse", public=True)
    router.add("GET", "/{org}", index_page, "browse", public=True)
    router.add("GET", r"/{org}/{project}/_workitems/edit/(?P<id>\d+)", edit_page, "browse", public=True)
    router.add("GET", "/{org}/{project}(?:/_backlogs(?:/.*)?)?", backlog_page, "browse", public=True)
