"""The OpenAPI document against the app itself: every route is described, every JSON answer has a
real schema, and the bodies the handlers send validate against it."""

from __future__ import annotations

from typing import Any

import jsonschema_rs
from aiohttp.test_utils import TestClient

from service.composition import Services
from tests.web.conftest import VISION
from web.routes import ROUTES

Client = TestClient[Any, Any]
_UNDOCUMENTED = {"/", "/static"}  # the UI's page and files, not the API


def _schema_of(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref", "")
    if ref:
        resolved: dict[str, Any] = doc["components"]["schemas"][ref.rsplit("/", 1)[-1]]
        return resolved
    return schema


async def _document(client: Client) -> dict[str, Any]:
    resp = await client.get("/api/openapi.json")
    assert resp.status == 200
    doc: dict[str, Any] = await resp.json()
    return doc


async def test_every_json_answer_in_the_document_has_a_real_schema(client: Client) -> None:
    """Every 2xx ``application/json`` response names a schema with properties, never a bare
    ``{"type": "object"}``; every operation has an operationId, all of them distinct."""
    doc = await _document(client)
    seen: list[str] = []
    json_answers = 0
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            seen.append(op["operationId"])
            for status, answer in op["responses"].items():
                media = answer.get("content", {}).get("application/json")
                if not status.startswith("2") or media is None:
                    continue
                json_answers += 1
                schema = _schema_of(doc, media["schema"])
                assert schema.get("properties"), f"{method.upper()} {path} {status}: {schema}"
    assert json_answers >= 18
    assert len(seen) == len(set(seen))


async def test_every_route_is_in_the_document_and_every_operation_is_a_route(client: Client) -> None:
    """The aiohttp router and the document list the same (method, path) pairs: nothing served is
    undocumented and nothing documented is missing (HEAD, the UI page and static files aside)."""
    doc = await _document(client)
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    served = {
        (route.method, route.resource.canonical)
        for route in client.app.router.routes()
        if route.method != "HEAD" and route.resource is not None
        if route.resource.canonical not in _UNDOCUMENTED
    }
    assert served == documented
    assert {(r.method, r.path) for r in ROUTES} == documented


async def test_the_answers_of_a_finished_job_validate_against_the_document(
    client: Client, services: Services
) -> None:
    """A job run to the end: its created answer, list, detail, progress, backlog, JSON export and
    quality, and the hardware, health and session answers, each validate against its schema."""
    doc = await _document(client)
    created = await client.post("/api/jobs", json={"vision": VISION})
    job_id = (await created.json())["job_id"]
    await _validate(doc, "post", "/api/jobs", created)
    assert (await services.jobs.wait(job_id)).status == "completed"
    for path, url in [
        ("/api/jobs", "/api/jobs"),
        ("/api/jobs/{id}", f"/api/jobs/{job_id}"),
        ("/api/jobs/{id}/progress", f"/api/jobs/{job_id}/progress"),
        ("/api/jobs/{id}/backlog", f"/api/jobs/{job_id}/backlog"),
        ("/api/jobs/{id}/export", f"/api/jobs/{job_id}/export?format=json"),
        ("/api/jobs/{id}/quality", f"/api/jobs/{job_id}/quality"),
        ("/api/hardware", "/api/hardware"),
        ("/api/session", "/api/session"),
        ("/healthz", "/healthz"),
        ("/readyz", "/readyz"),
        ("/api/openapi.json", "/api/openapi.json"),
    ]:
        await _validate(doc, "get", path, await client.get(url))


async def _validate(doc: dict[str, Any], method: str, path: str, resp: Any) -> None:
    answer = doc["paths"][path][method]["responses"][str(resp.status)]
    # The document is the root, so the schemas' "#/components/schemas/…" references resolve in it.
    schema = {**answer["content"]["application/json"]["schema"], "components": doc["components"]}
    body = await resp.json()
    errors = list(jsonschema_rs.Draft202012Validator(schema).iter_errors(body))
    assert not errors, f"{method.upper()} {path}: {errors[0].message} at {errors[0].instance_path}"


async def test_a_new_job_links_to_every_operation_on_it(client: Client) -> None:
    """The links of a created job come from the route table: one per linked operation on the job,
    with the JSON export's query, plus the UI's page."""
    created = await (await client.post("/api/jobs", json={"vision": VISION})).json()
    job_id = created["job_id"]
    base = f"/api/jobs/{job_id}"
    assert created["links"] == {
        "self": base,
        "backlog": f"{base}/backlog",
        "export": f"{base}/export?format=json",
        "progress": f"{base}/progress",
        "quality": f"{base}/quality",
        "retry_uploads": f"{base}/retry-uploads",
        "upload": f"{base}/upload",
        "stream": f"/api/progress/stream/{job_id}",
        "ui": f"/#/jobs/{job_id}",
    }
    for name in ("self", "backlog", "export", "progress", "quality"):
        assert (await client.get(created["links"][name])).status == 200, name
