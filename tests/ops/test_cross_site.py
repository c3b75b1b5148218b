"""Hole 2: requests that change state must come from us. Without an API token (the default) a page on
any site could create jobs with a ``<form enctype="text/plain">`` and a DNS-rebinding page could read
the API; every response also tells the browser how it may be used (security headers)."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.ops.conftest import TOKEN, VISION, AppFactory
from web.auth import COOKIE

Client = TestClient[Any, Any]
# What a browser sends for <form method=post enctype="text/plain" action="http://127.0.0.1:8080/api/jobs">
# with <input name='{"vision": "x", "junk": "' value='"}'>: a body that happens to be JSON.
FORM_BODY = '{"vision": "Riders rent bikes. Staff fix bikes.", "junk": "="}'


async def test_a_cross_site_text_plain_form_creates_no_job(make_client: AppFactory) -> None:
    """The cross-site form probe (text/plain body, foreign Origin) is refused and creates nothing; so is
    the same body without an Origin (415: only application/json bodies are read)."""
    client, services = await make_client()
    headers = {"Content-Type": "text/plain", "Origin": "https://evil.example"}
    resp = await client.post("/api/jobs", data=FORM_BODY, headers=headers)
    assert resp.status == 403 and (await resp.json())["error"]["code"] == "cross_site_request"
    plain = await client.post("/api/jobs", data=FORM_BODY, headers={"Content-Type": "text/plain"})
    body = await plain.json()
    assert plain.status == 415 and body["error"]["details"][0]["field"] == "Content-Type"
    assert await services.store.list_jobs() == []


@pytest.mark.parametrize("origin", ["https://evil.example", "null", "http://127.0.0.1:1"])
@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/jobs"), ("DELETE", "/api/jobs/x"), ("POST", "/api/jobs/x/retry-uploads")],
)
async def test_state_changing_requests_from_a_foreign_origin_are_403_without_a_token(
    make_client: AppFactory, origin: str, method: str, path: str
) -> None:
    """With no API token, a POST or DELETE whose Origin is another site (or "null") gets 403."""
    client, _ = await make_client()
    resp = await client.request(method, path, json={"vision": VISION}, headers={"Origin": origin})
    assert resp.status == 403, await resp.text()


async def test_our_own_origin_and_scripts_without_an_origin_still_work(make_client: AppFactory) -> None:
    """The UI (same Origin) and scripts (no Origin, JSON body) create jobs as before."""
    client, _ = await make_client()
    same = f"http://{client.host}:{client.port}"
    assert (await client.post("/api/jobs", json={"vision": VISION}, headers={"Origin": same})).status == 202
    assert (await client.post("/api/jobs", json={"vision": VISION})).status == 202


async def test_a_cookie_write_from_another_site_is_refused_with_a_token(make_client: AppFactory) -> None:
    """With a token, a logged-in browser's cross-site write is refused as well (every mode)."""
    client, _ = await make_client(token=TOKEN)
    assert (await client.post("/api/session", json={"token": TOKEN})).status == 200
    evil = await client.post("/api/jobs", json={"vision": VISION}, headers={"Origin": "https://evil.example"})
    assert evil.status == 403


async def test_dns_rebinding_reads_are_refused(make_client: AppFactory) -> None:
    """A page on attacker.example resolved to 127.0.0.1 sends ``Host: attacker.example``: 421, no data."""
    client, _ = await make_client()
    await client.post("/api/jobs", json={"vision": VISION})
    for path in ("/api/jobs", "/api/session", "/", "/metrics"):
        resp = await client.get(path, headers={"Host": "attacker.example:8080"})
        text = await resp.text()
        assert resp.status == 421 and "job_id" not in text, path
        assert "server.allowed_hosts" in text
    assert (await client.get("/api/jobs", headers={"Host": f"localhost:{client.port}"})).status == 200


async def test_allowed_hosts_names_the_hosts_the_service_answers_to(make_client: AppFactory) -> None:
    """server.allowed_hosts replaces the defaults: the listed name works, 127.0.0.1 no longer does."""
    client, _ = await make_client(server={"allowed_hosts": ["backlog.example.com"]})
    assert (await client.get("/api/jobs", headers={"Host": "backlog.example.com"})).status == 200
    assert (await client.get("/api/jobs")).status == 421
    assert (await client.get("/readyz", headers={"Host": "10.0.0.5:8080"})).status == 200  # probes


async def test_every_response_carries_the_security_headers(make_client: AppFactory) -> None:
    """The UI, static files, API answers, errors and refusals all carry CSP (frame-ancestors 'none'),
    nosniff, X-Frame-Options and Referrer-Policy."""
    client, _ = await make_client()
    responses = [
        await client.get("/"),
        await client.get("/static/js/main.js"),
        await client.get("/api/jobs"),
        await client.get("/api/jobs/nope"),
        await client.post("/api/jobs", data="x", headers={"Content-Type": "text/plain"}),
        await client.get("/api/jobs", headers={"Host": "evil.example"}),
    ]
    for resp in responses:
        csp = resp.headers.get("Content-Security-Policy", "")
        assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp, resp.url
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["X-Frame-Options"] == "DENY"
        assert resp.headers["Referrer-Policy"] == "no-referrer"


async def test_logout_revokes_the_session_server_side(make_client: AppFactory) -> None:
    """After logout a copy of the old cookie (stolen, or kept by another tab) no longer opens the API."""
    client, _ = await make_client(token=TOKEN)
    assert (await client.post("/api/session", json={"token": TOKEN})).status == 200
    value = client.session.cookie_jar.filter_cookies(client.make_url("/"))[COOKIE].value
    assert (await client.get("/api/jobs", cookies={COOKIE: value})).status == 200
    assert (await client.delete("/api/session")).status == 200
    assert (await client.get("/api/jobs", cookies={COOKIE: value})).status == 401
