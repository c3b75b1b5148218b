"""Authentication: bearer token on every /api/* route and /metrics, a login that sets an HttpOnly,
SameSite=Strict cookie (never the token), open health checks, and the refusal to listen on a
non-loopback address without a token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from service.composition import build_services
from tests.ops.conftest import TOKEN, VISION, AppFactory, make_settings
from tests.ops.procs import Serve
from web.app import create_app
from web.auth import COOKIE

BEARER = {"Authorization": f"Bearer {TOKEN}"}
GUARDED = [
    ("GET", "/api/jobs"),
    ("POST", "/api/jobs"),
    ("GET", "/api/jobs/00000000-0000-0000-0000-000000000000"),
    ("DELETE", "/api/jobs/00000000-0000-0000-0000-000000000000"),
    ("GET", "/api/jobs/00000000-0000-0000-0000-000000000000/backlog"),
    ("GET", "/api/jobs/00000000-0000-0000-0000-000000000000/export"),
    ("GET", "/api/jobs/00000000-0000-0000-0000-000000000000/progress"),
    ("POST", "/api/jobs/00000000-0000-0000-0000-000000000000/retry-uploads"),
    ("POST", "/api/jobs/00000000-0000-0000-0000-000000000000/upload"),
    ("GET", "/api/progress/stream/00000000-0000-0000-0000-000000000000"),
    ("GET", "/api/hardware"),
    ("GET", "/api/openapi.json"),
    ("GET", "/metrics"),
]


async def _login(client: TestClient[Any, Any]) -> str:
    resp = await client.post("/api/session", json={"token": TOKEN})
    assert resp.status == 200, await resp.text()
    return resp.headers["Set-Cookie"]


async def test_every_api_route_and_metrics_need_the_token(make_client: AppFactory) -> None:
    """Without the token every /api/* route and /metrics answer 401 JSON; health checks and UI stay open."""
    client, _ = await make_client(token=TOKEN)
    for method, path in GUARDED:
        resp = await client.request(method, path, json={"vision": VISION} if method == "POST" else None)
        assert resp.status == 401, (method, path, resp.status)
        assert (await resp.json())["error"]["code"] == "unauthorized"
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = await client.get("/api/jobs", headers={"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.status == 401
    for path in ("/healthz", "/readyz", "/", "/static/js/main.js", "/api/session"):
        assert (await client.get(path)).status == 200, path


async def test_the_bearer_token_opens_every_route(make_client: AppFactory) -> None:
    """With ``Authorization: Bearer <token>`` the API works: a job is created, listed and streamed."""
    client, services = await make_client(token=TOKEN)
    created = await client.post("/api/jobs", json={"vision": VISION}, headers=BEARER)
    assert created.status == 202
    job_id = (await created.json())["job_id"]
    await services.jobs.wait(job_id)
    listed = await (await client.get("/api/jobs", headers=BEARER)).json()
    assert [j["job_id"] for j in listed["jobs"]] == [job_id]
    stream = await client.get(f"/api/progress/stream/{job_id}", headers=BEARER)
    assert stream.status == 200 and "event: final" in await stream.text()
    assert (await client.get("/metrics", headers=BEARER)).status == 200


async def test_login_sets_an_httponly_strict_cookie_that_is_not_the_token(make_client: AppFactory) -> None:
    """POST /api/session trades the token for a signed HttpOnly, SameSite=Strict cookie that opens the
    API and EventSource streams; logout clears it; the token itself appears nowhere in the answer."""
    client, services = await make_client(token=TOKEN)
    assert await (await client.get("/api/session")).json() == {"auth_required": True, "authenticated": False}
    bad = await client.post("/api/session", json={"token": "wrong-token-wrong-token"})
    assert bad.status == 401 and (await bad.json())["error"]["code"] == "invalid_token"
    resp = await client.post("/api/session", json={"token": TOKEN})
    cookie = resp.headers["Set-Cookie"]
    assert TOKEN not in cookie and TOKEN not in await resp.text()
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/" in cookie
    assert await (await client.get("/api/session")).json() == {"auth_required": True, "authenticated": True}
    created = await client.post("/api/jobs", json={"vision": VISION})  # the cookie jar sends it
    assert created.status == 202
    job_id = (await created.json())["job_id"]
    await services.jobs.wait(job_id)
    stream = await client.get(f"/api/progress/stream/{job_id}")
    assert stream.status == 200 and "event: final" in await stream.text()
    assert (await client.delete("/api/session")).status == 200
    assert (await client.get("/api/jobs")).status == 401


async def test_a_cookie_write_from_another_site_is_refused(make_client: AppFactory) -> None:
    """A cookie-authenticated POST whose Origin is another site gets 403; the same origin works."""
    client, _ = await make_client(token=TOKEN)
    await _login(client)
    evil = await client.post("/api/jobs", json={"vision": VISION}, headers={"Origin": "https://evil.example"})
    assert evil.status == 403 and (await evil.json())["error"]["code"] == "cross_site_request"
    same = f"http://{client.host}:{client.port}"
    assert (await client.post("/api/jobs", json={"vision": VISION}, headers={"Origin": same})).status == 202


async def test_sessions_survive_a_restart_and_end_when_the_token_rotates(
    tmp_path: Path, aiohttp_client: Any
) -> None:
    """A session cookie from one process is valid in the next with the same token, not with a new token."""
    settings = make_settings(tmp_path, server={"api_token_env": "T"})
    async with build_services(settings, {}) as services:
        first = await aiohttp_client(create_app(settings, services, api_token=TOKEN))
        await _login(first)
        value = first.session.cookie_jar.filter_cookies(first.make_url("/"))[COOKIE].value
        await first.close()
        same = await aiohttp_client(create_app(settings, services, api_token=TOKEN))
        ok = await same.get("/api/jobs", cookies={COOKIE: value})
        assert ok.status == 200
        await same.close()
        rotated = await aiohttp_client(create_app(settings, services, api_token=TOKEN + "-rotated"))
        assert (await rotated.get("/api/jobs", cookies={COOKIE: value})).status == 401
        assert (await rotated.get("/api/jobs", cookies={COOKIE: value + "0"})).status == 401
        await rotated.close()


async def test_without_a_token_the_api_is_open(make_client: AppFactory) -> None:
    """With no ``api_token_env`` (loopback only) nothing asks for a token and the UI needs no login."""
    client, _ = await make_client()
    assert (await client.get("/api/jobs")).status == 200
    assert (await client.get("/metrics")).status == 200
    assert await (await client.get("/api/session")).json() == {"auth_required": False, "authenticated": True}


async def test_serve_refuses_a_public_address_without_a_token(tmp_path: Path) -> None:
    """``serve`` on 0.0.0.0 without a token, or with a token variable that is not set, exits 2 with a
    message saying why, before it listens."""
    cases = [
        ({"host": "0.0.0.0"}, {}, "refusing to listen on 0.0.0.0 without an API token"),
        ({"host": "127.0.0.1", "api_token_env": "BACKLOGD_OPS_TOKEN"}, {}, "BACKLOGD_OPS_TOKEN"),
        (
            {"host": "0.0.0.0", "api_token_env": "BACKLOGD_OPS_TOKEN"},
            {"BACKLOGD_OPS_TOKEN": "short"},
            "too short",
        ),
    ]
    for n, (server, env, message) in enumerate(cases):
        folder = tmp_path / str(n)
        folder.mkdir()
        serve = Serve(
            folder, {"server": {"port": 0, **server}, "database": {"path": str(folder / "db")}}, env
        )
        await serve.spawn()
        assert await serve.wait(20) == 2
        assert message in serve.stderr()
        assert not (folder / "db").exists()  # nothing was opened


async def test_a_token_from_a_systemd_credential_file_is_used(tmp_path: Path) -> None:
    """The token is read from ``$CREDENTIALS_DIRECTORY/<name>`` (LoadCredential=) and guards the API."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "BACKLOGD_API_TOKEN").write_text(TOKEN + "\n", encoding="utf-8")
    settings = {
        "server": {"port": 0, "host": "127.0.0.1", "api_token_env": "BACKLOGD_API_TOKEN"},
        "database": {"path": str(tmp_path / "db.sqlite3")},
        "azure_devops": {"target": "none"},
    }
    serve = Serve(tmp_path, settings, {"CREDENTIALS_DIRECTORY": str(creds)})
    base = await serve.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/api/jobs") as resp:
                assert resp.status == 401
            async with session.get(f"{base}/api/jobs", headers=BEARER) as resp:
                assert resp.status == 200
        code, _ = await serve.terminate(15)
        assert code == 0
    finally:
        serve.kill()
