"""Secrets never leave the service: a unique API token, LLM key, server PAT and per-job PATs are planted,
jobs run against an LLM and an ADO that fail, throttle, lose responses and echo keys back, and then
the logs (stderr of the real process), the SQLite files (raw bytes), every API response and every
export are searched for each secret and its Basic-auth encodings: none is found. The same logs are
checked as JSON lines with a journald priority, one event per line, ``job_id`` on a job's lines."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import uuid
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

from emulator.config import FaultConfig
from tests.ops.conftest import SMALL, VISION
from tests.ops.procs import Serve

GRACE = 2.0
JOB_EVENTS = {"llm_call_committed", "llm_call_failed", "llm_answer_rejected", "upload_retry", "upload_dead"}


def _forms(secret: str) -> list[bytes]:
    """The secret as text and as it would travel in an Authorization header (Basic ``:pat``)."""
    raw = secret.encode()
    return [raw, base64.b64encode(b":" + raw), base64.b64encode(raw), json.dumps(secret).encode()]


class EchoKeyOnce:
    """The ``nth`` LLM request is refused with a 401 that echoes the key it was sent (as OpenAI does)."""

    __middleware_version__ = 1

    def __init__(self, nth: int) -> None:
        self.nth = nth
        self.seen = 0

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        self.seen += 1
        if self.seen != self.nth:
            return await handler(request)
        given = request.headers.get("Authorization", "")
        body = {
            "error": {"message": f"Incorrect API key provided: {given}.", "type": "invalid_request_error"}
        }
        return web.json_response(body, status=401)


async def test_planted_secrets_appear_in_no_log_database_response_or_export(
    tmp_path: Path, fake_llm: Any, emulator: Any
) -> None:
    """Every secret (API token, LLM key, server PAT, per-job PATs, a wrong PAT) is absent from the logs,
    the database files, every API response and every export, after jobs ran through faults."""
    tag = uuid.uuid4().hex
    token, llm_key = f"token-{tag}", f"sk-llm-{tag}"
    env_pat, job_pat, bad_pat = f"envpat{tag}", f"jobpat{tag}", f"badpat{tag}"
    llm = await fake_llm(
        api_key=llm_key,
        script=["500", ("429", 0.01), "invalid_json", "reset"],
        middlewares=[EchoKeyOnce(nth=8)],
    )
    faults = FaultConfig(
        throttle=0.1,
        error_500=0.05,
        lose_response=0.05,
        retry_after_seconds=0.05,
        seed=3,
        routes=frozenset({"create", "wiql"}),
    )
    ado = await emulator(pats=frozenset({env_pat, job_pat}), faults=faults)
    settings = {
        "server": {
            "host": "127.0.0.1",
            "port": 0,
            "api_token_env": "BACKLOGD_API_TOKEN",
            "shutdown_grace_seconds": GRACE,
        },
        "database": {"path": str(tmp_path / "db.sqlite3")},
        "llm": {
            "provider": "openai",
            "base_url": llm.base_url,
            "api_key_env": "OPENAI_API_KEY",
            "max_attempts": 3,
        },
        "azure_devops": {
            "target": "ado",
            "organization_url": ado.url,
            "upload_mode": "streaming",
            "upload_retry_attempts": 3,
        },
        "workflow": {"include_qa": False, "limits": SMALL},
        "progress": {"heartbeat_seconds": 0.05},
        "logging": {"level": "debug", "format": "json"},
    }
    env = {"BACKLOGD_API_TOKEN": token, "OPENAI_API_KEY": llm_key, "AZURE_DEVOPS_PAT": env_pat}
    serve = Serve(tmp_path, settings, env)
    responses: list[bytes] = []
    try:
        base = await serve.start()
        auth = {"Authorization": f"Bearer {token}"}
        async with aiohttp.ClientSession(headers=auth) as session:

            async def call(method: str, path: str, **kw: Any) -> Any:
                async with session.request(method, f"{base}{path}", **kw) as resp:
                    body = await resp.read()
                    responses.append(body + json.dumps(dict(resp.headers)).encode())
                    return resp.status, body

            jobs = []
            for pat in (job_pat, None, bad_pat):
                ado_part = {"pat": pat} if pat else {}
                status, body = await call(
                    "POST",
                    "/api/jobs",
                    json={"vision": VISION, "azure_devops": ado_part, "new_copy": True},  # three copies
                )
                assert status == 202
                jobs.append(json.loads(body)["job_id"])
            status, _ = await call(
                "POST", "/api/jobs", json={"vision": "", "azure_devops": {"pat": job_pat, "x": 1}}
            )
            assert status == 400
            await _until_done(call, jobs)
            status, _ = await call("POST", f"/api/jobs/{jobs[2]}/retry-uploads", json={"pat": job_pat})
            assert status == 202
            await _until_done(call, jobs)
            for job_id in jobs:
                for path in (
                    "",
                    "/backlog",
                    "/progress",
                    "/export?format=json",
                    "/export?format=csv",
                    "/export?format=md",
                ):
                    assert (await call("GET", f"/api/jobs/{job_id}{path}"))[0] == 200
                assert (await call("GET", f"/api/progress/stream/{job_id}?lastEventId=0"))[0] == 200
            for path in (
                "/api/jobs",
                "/metrics",
                "/api/hardware",
                "/api/openapi.json",
                "/readyz",
                "/healthz",
                "/api/session",
            ):
                await call("GET", path)
            finals = [json.loads((await call("GET", f"/api/jobs/{j}"))[1])["status"] for j in jobs]
        assert finals[0] in ("completed", "completed_with_errors") and finals[2] != "needs_credentials"
        assert llm.fake.usage["requests"] > 0 and len(ado.state.items) > 0
        assert (await serve.terminate(GRACE + 10))[0] == 0
    finally:
        serve.kill()

    logs = serve.stderr()
    stores = await asyncio.to_thread(lambda: [p.read_bytes() for p in tmp_path.glob("db.sqlite3*")])
    haystacks = {
        "logs": [logs.encode(), serve.stdout_path.read_bytes()],
        "database": stores,
        "api": responses,
    }
    for secret in (token, llm_key, env_pat, job_pat, bad_pat):
        for where, blobs in haystacks.items():
            for form in _forms(secret):
                assert not any(form in blob for blob in blobs), f"{secret} found in {where}"
    assert "***" in logs or "Incorrect API key" not in logs  # the echoed key was redacted, not dropped
    _check_log_lines(logs)


async def _until_done(call: Any, jobs: list[str]) -> None:
    async with asyncio.timeout(45):
        while True:
            states = [json.loads((await call("GET", f"/api/jobs/{j}"))[1])["status"] for j in jobs]
            if all(s not in ("queued", "running") for s in states):
                return
            await asyncio.sleep(0.1)


def _check_log_lines(logs: str) -> None:
    """One JSON object per line behind a journald ``<N>`` prefix, each with one event name; a job's
    generation and upload lines carry its ``job_id``."""
    lines = [ln for ln in logs.splitlines() if ln.strip()]
    assert lines
    seen = set()
    for line in lines:
        found = re.fullmatch(r"<([0-7])>(\{.*\})", line)
        assert found, line
        event = json.loads(found.group(2))
        assert re.fullmatch(r"[a-z0-9_]+", event["event"]), line  # a stable snake_case name
        seen.add(event["event"])
        if event["event"] in JOB_EVENTS:
            assert event.get("job_id"), line
        if event["level"] in ("error", "critical"):
            assert found.group(1) in "0123"
    assert {"serving", "llm_call_committed", "job_finished", "stopped"} <= seen
