"""The REST contract of design §4 through aiohttp's test client: bodies, statuses, headers, errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from emulator.config import FaultConfig
from service.composition import Services, build_services
from tests.web.conftest import VISION, make_settings
from tests.web.sse_client import Seen, read_stream
from web.app import create_app

Client = TestClient[Any, Any]


async def _submit(client: Client, body: dict[str, Any] | None = None) -> str:
    resp = await client.post("/api/jobs", json=body or {"vision": VISION})
    assert resp.status == 202, await resp.text()
    return str((await resp.json())["job_id"])


async def test_create_job_answers_202_with_links_and_runs_to_an_uploaded_tree(
    client: Client, services: Services
) -> None:
    """POST /api/jobs returns the id and links at once; the job then generates and uploads every item."""
    resp = await client.post("/api/jobs", json={"vision": VISION, "include_qa": False})
    assert resp.status == 202
    body = await resp.json()
    job_id = body["job_id"]
    assert body["links"]["stream"] == f"/api/progress/stream/{job_id}"
    assert resp.headers["Location"] == f"/api/jobs/{job_id}"
    await services.jobs.wait(job_id)
    job = await (await client.get(f"/api/jobs/{job_id}")).json()
    assert job["status"] == "completed" and job["title"] == "Bike shop"
    tree = await (await client.get(f"/api/jobs/{job_id}/backlog")).json()
    epics = tree["epics"]
    assert len(epics) == 2
    story = epics[0]["features"][0]["stories"][0]
    for node in (epics[0], story, story["tasks"][0]):
        assert node["upload"]["state"] == "uploaded"
        assert node["upload"]["ado_id"] > 0
        assert node["upload"]["url"].endswith(f"/_workitems/edit/{node['upload']['ado_id']}")
    assert story["test_cases"] == []
    sentences = {s["id"]: s for s in tree["sentences"]}  # traceability: sentence text and citing stories
    for sid in story["sources"]:
        assert sentences[sid]["text"] and story["id"] in sentences[sid]["covered_by"]
    listing = await (await client.get("/api/jobs")).json()
    assert [j["job_id"] for j in listing["jobs"]] == [job_id]


async def test_exports_download_json_csv_and_markdown(client: Client, services: Services) -> None:
    """Each export format downloads as an attachment with its content type; unknown formats are a 400."""
    job_id = await _submit(client)
    await services.jobs.wait(job_id)
    expected = {"json": "application/json", "csv": "text/csv", "md": "text/markdown"}
    for fmt, content_type in expected.items():
        resp = await client.get(f"/api/jobs/{job_id}/export", params={"format": fmt})
        assert resp.status == 200 and resp.content_type == content_type
        assert resp.headers["Content-Disposition"] == f'attachment; filename="backlog-{job_id[:8]}.{fmt}"'
        text = await resp.text()
        assert "Customers book repairs online" in text
    assert json.loads(
        text if fmt == "json" else (await (await client.get(f"/api/jobs/{job_id}/export?format=json")).text())
    )["epics"]
    bad = await client.get(f"/api/jobs/{job_id}/export", params={"format": "xml"})
    assert bad.status == 400 and (await bad.json())["error"]["details"][0]["field"] == "format"


async def test_every_bad_field_is_listed_in_a_400(client: Client) -> None:
    """A body with several problems gets one 400 naming each bad field, and no job is created."""
    resp = await client.post(
        "/api/jobs", json={"vision": 7, "limits": {"max_epics": 0}, "upload_mode": "x", "surprise": True}
    )
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "invalid_request"
    fields = {d["field"] for d in error["details"]}
    assert fields == {"vision", "limits.max_epics", "upload_mode", "surprise"}
    assert (await (await client.get("/api/jobs")).json())["jobs"] == []


async def test_bad_json_empty_vision_and_bad_yaml_are_400s(client: Client) -> None:
    """Malformed JSON, an empty vision and an unparsable YAML file each get a 400 with their own code."""
    resp = await client.post("/api/jobs", data=b"{not json", headers={"Content-Type": "application/json"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "invalid_json"
    resp = await client.post("/api/jobs", json={"vision": "   "})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_vision"
    resp = await client.post("/api/jobs?vision_format=yaml", json={"vision": "title: [unclosed"})
    assert resp.status == 400 and (await resp.json())["error"]["code"] == "bad_vision"


async def test_a_yaml_vision_file_is_parsed_as_structured(client: Client, services: Services) -> None:
    """A YAML file the browser read as text becomes a structured vision (its title is the job's title)."""
    yaml_text = "title: Library loans\nvision: Members borrow books online. Librarians see overdue loans.\n"
    job_id = await _submit(client, {"vision": yaml_text, "include_qa": False})
    second = {
        "vision": yaml_text,
        "include_qa": False,
        "new_copy": True,
    }  # the same vision: a copy on purpose
    resp = await client.post("/api/jobs?vision_format=yaml", json=second)
    assert resp.status == 202
    job = await (await client.get(f"/api/jobs/{(await resp.json())['job_id']}")).json()
    assert job["title"] == "Library loans"
    await services.jobs.wait(job_id)


async def test_body_over_the_limit_is_413(tmp_path: Path, aiohttp_client: Any) -> None:
    """A body larger than server.max_body_bytes is refused with a JSON 413."""
    settings = make_settings(tmp_path, server={"max_body_bytes": 2048}, azure_devops={"target": "none"})
    async with build_services(settings, {}) as services:
        client = await aiohttp_client(create_app(settings, services))
        resp = await client.post("/api/jobs", json={"vision": "x" * 5000})
        assert resp.status == 413
        assert (await resp.json())["error"]["code"] == "body_too_large"


async def test_unknown_jobs_are_404_on_every_route(client: Client) -> None:
    """Every per-job route answers a JSON 404 for an id that does not exist."""
    missing = "00000000-0000-0000-0000-000000000000"
    calls = [
        ("GET", f"/api/jobs/{missing}"),
        ("DELETE", f"/api/jobs/{missing}"),
        ("GET", f"/api/jobs/{missing}/backlog"),
        ("GET", f"/api/jobs/{missing}/export"),
        ("GET", f"/api/jobs/{missing}/progress"),
        ("GET", f"/api/progress/stream/{missing}"),
        ("POST", f"/api/jobs/{missing}/retry-uploads"),
        ("POST", f"/api/jobs/{missing}/upload"),
    ]
    for method, path in calls:
        resp = await client.request(method, path)
        assert resp.status == 404, (method, path)
        assert (await resp.json())["error"]["code"] == "job_not_found"
    resp = await client.get("/api/nothing-here")
    assert resp.status == 404 and (await resp.json())["error"]["code"] == "not_found"
    resp = await client.put("/api/jobs")
    assert resp.status == 405 and (await resp.json())["error"]["code"] == "method_not_allowed"


async def test_actions_in_the_wrong_state_are_409(client: Client, services: Services) -> None:
    """Cancelling a finished job, or uploading a job without a target, is a 409 conflict."""
    job_id = await _submit(
        client, {"vision": VISION, "include_qa": False, "azure_devops": {"target": "none"}}
    )
    await services.jobs.wait(job_id)
    resp = await client.delete(f"/api/jobs/{job_id}")
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "conflict"
    resp = await client.post(f"/api/jobs/{job_id}/upload")
    assert resp.status == 409
    resp = await client.post(f"/api/jobs/{job_id}/retry-uploads", json={"pat": 5})
    assert resp.status == 400 and (await resp.json())["error"]["details"][0]["field"] == "pat"


async def test_cancel_stops_a_running_job(client: Client, services: Services) -> None:
    """DELETE on a job that is still uploading cancels it and reports the cancelled state."""
    assert services.emulator is not None
    services.emulator.state.set_faults(FaultConfig(latency_seconds=0.05, routes=frozenset({"any"})))
    job_id = await _submit(client)
    resp = await client.delete(f"/api/jobs/{job_id}")
    assert resp.status == 200
    assert (await resp.json())["status"] == "cancelled"
    assert (await (await client.get(f"/api/jobs/{job_id}")).json())["status"] == "cancelled"


async def test_progress_etag_gives_304_until_a_new_event(client: Client, services: Services) -> None:
    """The progress ETag is the job's last seq: a matching If-None-Match is a 304 until an event lands."""
    job_id = await _submit(client, {"vision": VISION, "upload_mode": "manual", "include_qa": False})
    await services.jobs.wait(job_id)
    resp = await client.get(f"/api/jobs/{job_id}/progress")
    assert resp.status == 200 and resp.headers["Cache-Control"] == "no-cache"
    body = await resp.json()
    etag = resp.headers["ETag"]
    assert etag == f'"{body["last_event_id"]}"' == body["etag"]
    assert body["status"] == "awaiting_upload" and body["counts"]["story"]["generated"] > 0
    for key in ("job_id", "progress", "current_action", "current_agent", "timestamp", "eta_seconds"):
        assert key in body
    again = await client.get(f"/api/jobs/{job_id}/progress", headers={"If-None-Match": etag})
    assert again.status == 304 and again.headers["ETag"] == etag
    resp = await client.post(f"/api/jobs/{job_id}/upload")
    assert resp.status == 202
    await services.jobs.wait(job_id)
    changed = await client.get(f"/api/jobs/{job_id}/progress", headers={"If-None-Match": etag})
    assert changed.status == 200 and changed.headers["ETag"] != etag
    done = await changed.json()
    assert done["status"] == "completed" and done["progress"] == 100.0
    assert done["counts"]["task"]["uploaded"] == done["counts"]["task"]["generated"] > 0


async def test_jobs_list_has_an_etag(client: Client, services: Services) -> None:
    """GET /api/jobs answers 304 while no job changed."""
    job_id = await _submit(client, {"vision": VISION, "azure_devops": {"target": "none"}})
    await services.jobs.wait(job_id)
    first = await client.get("/api/jobs")
    again = await client.get("/api/jobs", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status == 304


@pytest.mark.parametrize(
    ("header", "status"),
    [('"other", W/{etag}', 304), ('"other", {etag}', 304), ("*", 304), ('"other"', 200), ("{bare}", 200)],
)
async def test_if_none_match_takes_weak_tags_lists_and_a_star(
    client: Client, services: Services, header: str, status: int
) -> None:
    """If-None-Match matches the progress ETag in a list, as a weak tag or as ``*``; another tag or an
    unquoted one is no match (200 with the body)."""
    job_id = await _submit(client, {"vision": VISION, "azure_devops": {"target": "none"}})
    await services.jobs.wait(job_id)
    etag = (await client.get(f"/api/jobs/{job_id}/progress")).headers["ETag"]
    sent = header.format(etag=etag, bare=etag.strip('"'))
    resp = await client.get(f"/api/jobs/{job_id}/progress", headers={"If-None-Match": sent})
    assert resp.status == status


async def test_retry_uploads_requeues_dead_items_and_uploads_them(client: Client, services: Services) -> None:
    """After every create failed, retry-uploads re-queues the dead and blocked items and all get uploaded."""
    assert services.emulator is not None
    services.emulator.state.set_faults(FaultConfig(error_500=1.0))
    services.relay.max_attempts = 1  # type: ignore[union-attr]
    job_id = await _submit(client, {"vision": VISION, "include_qa": False})
    await services.jobs.wait(job_id)
    tree = await (await client.get(f"/api/jobs/{job_id}/backlog")).json()
    assert tree["status"] == "completed_with_errors"
    assert tree["epics"][0]["upload"]["state"] == "dead" and tree["epics"][0]["upload"]["error"]
    assert tree["epics"][0]["features"][0]["upload"]["state"] == "blocked"
    services.emulator.state.set_faults(FaultConfig())
    resp = await client.post(f"/api/jobs/{job_id}/retry-uploads")
    assert resp.status == 202 and (await resp.json())["requeued"] > 0
    await services.jobs.wait(job_id)
    progress = await (await client.get(f"/api/jobs/{job_id}/progress")).json()
    assert progress["status"] == "completed"
    assert all(c["uploaded"] == c["generated"] and c["failed"] == 0 for c in progress["counts"].values())


async def test_health_ready_hardware_and_openapi(client: Client) -> None:
    """Liveness, readiness, the hardware report and an OpenAPI document naming every endpoint."""
    assert (await (await client.get("/healthz")).json())["status"] == "ok"
    ready = await client.get("/readyz")
    assert ready.status == 200
    assert (await ready.json())["checks"] == {
        "not_draining": True,
        "store_writable": True,
        "relay_alive": True,
    }
    hardware = await (await client.get("/api/hardware")).json()
    assert hardware["logical_cpus"] >= 1
    spec = await (await client.get("/api/openapi.json")).json()
    paths = spec["paths"]
    for path in (
        "/api/jobs",
        "/api/jobs/{id}",
        "/api/jobs/{id}/backlog",
        "/api/jobs/{id}/export",
        "/api/jobs/{id}/progress",
        "/api/progress/stream/{id}",
        "/api/jobs/{id}/retry-uploads",
        "/api/jobs/{id}/upload",
        "/api/targets/check",
        "/api/hardware",
        "/healthz",
        "/readyz",
    ):
        assert path in paths
    assert "vision" in spec["components"]["schemas"]["JobRequest"]["properties"]
    index = await client.get("/")
    assert index.status == 200 and "<title>backlogd</title>" in await index.text()
    js = await client.get("/static/js/main.js")
    assert js.status == 200 and "javascript" in js.content_type


async def test_a_pat_sent_with_a_job_never_comes_back(aiohttp_client: Any, tmp_path: Path) -> None:
    """A per-job PAT is used in memory only: no job, list, backlog, progress, export or event shows it."""
    settings = make_settings(tmp_path, azure_devops={"allowed_organizations": ("http://127.0.0.1:9",)})
    async with build_services(settings, {}, backoff_base=0.01) as services:
        client = await aiohttp_client(create_app(settings, services))
        await _pat_stays_hidden(client, services)


async def _pat_stays_hidden(client: Client, services: Services) -> None:
    secret = "pat-that-must-not-leak-4711"
    job_id = await _submit(
        client,
        {
            "vision": VISION,
            "include_qa": False,
            "azure_devops": {"target": "ado", "organization_url": "http://127.0.0.1:9", "pat": secret},
            "upload_mode": "manual",
        },
    )
    await services.jobs.wait(job_id)
    paths = [
        "/api/jobs",
        f"/api/jobs/{job_id}",
        f"/api/jobs/{job_id}/backlog",
        f"/api/jobs/{job_id}/progress",
        f"/api/jobs/{job_id}/export?format=json",
        f"/api/jobs/{job_id}/export?format=csv",
    ]
    for path in paths:
        text = await (await client.get(path)).text()
        assert secret not in text, path
    seen = Seen()
    async with client.get(f"/api/progress/stream/{job_id}") as resp:
        await read_stream(resp, seen, limit=(await services.jobs.wait(job_id)).last_seq)
    assert len(seen.frames) > 10 and secret not in json.dumps([f.data for f in seen.frames])
