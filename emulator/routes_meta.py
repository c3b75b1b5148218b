"""Discovery routes: projects (E1), processes (E2), work item types and fields (E3), and the location
service (OPTIONS `_apis`, ResourceAreas) that Microsoft's SDKs call before anything else."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from emulator.processes import (
    FIELDS,
    PROCESS_IDS,
    FieldDef,
    TypeDef,
    type_fields,
    types_of,
)
from emulator.routes_wit import type_of
from emulator.routing import (
    RouteMatch,
    Router,
    check_org,
    collection,
    flag,
    json_response,
    org_url,
    project_of,
    state_of,
)
from emulator.state import Project

# (id, area, resource, route template, max version, resource version) for the SDK's location lookups.
LOCATIONS: tuple[tuple[str, str, str, str, float, int], ...] = (
    (
        "e81700f7-3be2-46de-8624-2eb35882fcaa",
        "Location",
        "ResourceAreas",
        "_apis/{resource}/{areaId}",
        7.1,
        1,
    ),
    ("603fe2ac-9723-48b9-88ad-09305aa6c6e1", "core", "projects", "_apis/{resource}/{*projectId}", 7.1, 4),
    (
        "93878975-88c5-4e6a-8abb-7ddd77a8a7d8",
        "core",
        "processes",
        "_apis/process/{resource}/{*processId}",
        7.1,
        1,
    ),
    (
        "62d3d110-0047-428c-ad3c-4fe872c91c74",
        "wit",
        "workItems",
        "{project}/_apis/{area}/{resource}/${type}",
        7.1,
        3,
    ),
    (
        "72c7ddf8-2cdc-4f60-90cd-ab71c14a399b",
        "wit",
        "workItems",
        "{project}/_apis/{area}/{resource}/{id}",
        7.1,
        3,
    ),
    (
        "908509b6-4248-4475-a1cd-829139ba419f",
        "wit",
        "workItemsBatch",
        "{project}/_apis/{area}/{resource}",
        7.1,
        1,
    ),
    (
        "1a9c53f7-f243-4447-b110-35ef023636e4",
        "wit",
        "wiql",
        "{project}/{team}/_apis/{area}/{resource}/{id}",
        7.1,
        2,
    ),
    (
        "7c8d7a76-4a09-43e8-b5df-bd792f4ac6aa",
        "wit",
        "workItemTypes",
        "{project}/_apis/{area}/{resource}/{type}",
        7.1,
        2,
    ),
    (
        "bd293ce5-3d25-4192-8e67-e8092e879efb",
        "wit",
        "fields",
        "{project}/_apis/{area}/workItemTypes/{type}/{resource}/{field}",
        7.1,
        3,
    ),
    (
        "5a172953-1b41-49d3-840a-33f79c3ce89f",
        "wit",
        "classificationNodes",
        "{project}/_apis/{area}/{resource}/{structureGroup}/{*path}",
        7.1,
        2,
    ),
    (
        "0e292477-a0c2-47f3-a9b6-34f153d627f4",
        "testplan",
        "Plans",
        "{project}/_apis/testplan/{resource}/{planId}",
        7.1,
        1,
    ),
    (
        "1046d5d3-ab61-4ca7-a65a-36118a978256",
        "testplan",
        "suites",
        "{project}/_apis/testplan/Plans/{planId}/{resource}/{suiteId}",
        7.1,
        1,
    ),
    (
        "a9bd61ac-45cf-4d13-9441-43dcd01edf8d",
        "testplan",
        "TestCase",
        "{project}/_apis/testplan/Plans/{planId}/Suites/{suiteId}/{resource}/{testCaseId}",
        7.1,
        3,
    ),
    (
        "a4a1ec1c-b03f-41ca-8857-704594ecf58e",
        "test",
        "testcases",
        "{project}/_apis/test/Plans/{planId}/suites/{suiteId}/{resource}/{testCaseIds}",
        7.1,
        3,
    ),
)


async def options(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    check_org(request, match.params)
    values = [
        {
            "id": lid,
            "area": area,
            "resourceName": resource,
            "routeTemplate": template,
            "resourceVersion": version,
            "minVersion": 1.0,
            "maxVersion": max_version,
            "releasedVersion": "7.1",
        }
        for lid, area, resource, template, max_version, version in LOCATIONS
    ]
    return collection(values)


async def resource_areas(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    """An empty list tells the SDK to use the organization URL for every area (as on-premises)."""
    check_org(request, match.params)
    return collection([])


def _project_json(request: web.Request, project: Project) -> dict[str, Any]:
    url = f"{org_url(request)}/_apis/projects/{project.id}"
    body: dict[str, Any] = {
        "id": project.id,
        "name": project.name,
        "url": url,
        "state": "wellFormed",
        "revision": 1,
        "visibility": "private",
        "defaultTeam": {"id": project.id, "name": f"{project.name} Team"},
        "_links": {"self": {"href": url}, "web": {"href": f"{org_url(request)}/{project.name}"}},
    }
    if flag(request, "includeCapabilities"):
        body["capabilities"] = {
            "processTemplate": {
                "templateName": project.process,
                "templateTypeId": PROCESS_IDS[project.process],
            },
            "versioncontrol": {"sourceControlType": "Git", "gitEnabled": "True", "tfvcEnabled": "False"},
        }
    return body


async def get_project(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    return json_response(_project_json(request, project_of(request, match.params)))


async def list_projects(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    check_org(request, match.params)
    return collection([_project_json(request, p) for p in state_of(request).projects.values()])


async def list_processes(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    check_org(request, match.params)
    values = [
        {
            "id": pid,
            "name": name,
            "description": f"{name} process",
            "type": "system",
            "isDefault": name == "Agile",
            "url": f"{org_url(request)}/_apis/process/processes/{pid}",
        }
        for name, pid in PROCESS_IDS.items()
    ]
    return collection(values)


def _field_json(request: web.Request, fdef: FieldDef, required: bool) -> dict[str, Any]:
    return {
        "referenceName": fdef.ref,
        "name": fdef.name,
        "alwaysRequired": required,
        "readOnly": fdef.read_only,
        "allowedValues": [str(v) for v in fdef.allowed],
        "defaultValue": None,
        "helpText": None,
        "url": f"{org_url(request)}/_apis/wit/fields/{fdef.ref}",
    }


def _type_fields(request: web.Request, type_def: TypeDef) -> list[dict[str, Any]]:
    extra = state_of(request).config.required_fields.get(type_def.name, ())
    result = [_field_json(request, FIELDS[ref], ref == "System.Title") for ref in type_fields(type_def)]
    result += [_field_json(request, FieldDef(ref, ref.rsplit(".", 1)[-1], "string"), True) for ref in extra]
    return result


def _type_json(request: web.Request, project: Project, type_def: TypeDef) -> dict[str, Any]:
    fields = _type_fields(request, type_def)
    return {
        "name": type_def.name,
        "referenceName": type_def.ref_name,
        "description": f"{type_def.name} ({project.process})",
        "color": "009CCC",
        "isDisabled": False,
        "fields": fields,
        "fieldInstances": fields,
        "states": [{"name": s, "color": "b2b2b2", "category": "Proposed"} for s in type_def.states],
        "url": f"{org_url(request)}/{project.id}/_apis/wit/workItemTypes/{type_def.name}",
    }


async def list_types(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    project = project_of(request, match.params)
    types = types_of(project.process, project.test_types)
    return collection([_type_json(request, project, t) for t in types])


async def get_type(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    project = project_of(request, match.params)
    return json_response(_type_json(request, project, type_of(project, match.params["type"])))


async def list_type_fields(request: web.Request, match: RouteMatch) -> web.StreamResponse:
    project = project_of(request, match.params)
    return collection(_type_fields(request, type_of(project, match.params["type"])))


def add_routes(router: Router) -> None:
    org, proj = "/{org}", "/{org}/{project}"
    router.add("OPTIONS", org + "/_apis", options, "meta")
    router.add("GET", org + "/_apis/ResourceAreas(?:/[^/]+)?", resource_areas, "meta")
    router.add("GET", org + "/_apis/projects", list_projects, "meta")
    router.add("GET", org + "/_apis/projects/{project}", get_project, "meta")
    router.add("GET", org + "/_apis/process/processes", list_processes, "meta")
    router.add("GET", proj + "/_apis/wit/workitemtypes", list_types, "meta")
    router.add("GET", proj + "/_apis/wit/workitemtypes/{type}", get_type, "meta")
    router.add("GET", proj + "/_apis/wit/workitemtypes/{type}/fields", list_type_fields, "meta")
