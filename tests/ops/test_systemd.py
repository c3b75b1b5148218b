"""``backlogd serve`` under a stand-in for systemd: the notify protocol on an AF_UNIX datagram socket the
test binds (READY after the listener is up, WATCHDOG pings, STOPPING on SIGTERM), exit 0 within the
grace period, and a job interrupted by SIGTERM mid-upload resumes on the next start, exactly once."""

from __future__ import annotations

import asyncio
import signal
import sqlite3
import time
from pathlib import Path
from typing import Any

import aiohttp

from emulator.config import FaultConfig
from tests.ops.conftest import SMALL, VISION
from tests.ops.procs import NotifySocket, Serve
from tests.web.sse_client import Seen, read_stream, until

GRACE = 2.0


def _settings(tmp_path: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "server": {"host": "127.0.0.1", "port": 0, "shutdown_grace_seconds": GRACE},
        "database": {"path": str(tmp_path / "db.sqlite3")},
        "workflow": {"include_qa": False, "limits": SMALL},
        "progress": {"heartbeat_seconds": 0.05},
        "logging": {"level": "info", "format": "json"},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return data


async def test_ready_after_the_listener_then_watchdog_then_stopping_and_exit_0(tmp_path: Path) -> None:
    """READY=1 arrives only once a connection to the announced address succeeds and /readyz passes;
    WATCHDOG=1 follows at half of WATCHDOG_USEC; SIGTERM brings STOPPING=1 and exit 0 within the grace."""
    notify = NotifySocket()
    serve = Serve(
        tmp_path,
        _settings(tmp_path, azure_devops={"target": "emulator"}),
        {"NOTIFY_SOCKET": notify.address, "WATCHDOG_USEC": "100000"},
    )
    try:
        await serve.spawn()
        ready = await notify.wait_for("READY", 30)
        url = ready["STATUS"].removeprefix("serving on ").rstrip("/")
        host, port = url.removeprefix("http://").rsplit(":", 1)
        _, writer = await asyncio.open_connection(host, int(port))  # the listener was up before READY
        writer.close()
        await writer.wait_closed()
        async with aiohttp.ClientSession() as session, session.get(f"{url}/readyz") as resp:
            body = await resp.json()
            assert resp.status == 200 and body["checks"]["relay_alive"] is True
        await notify.drain(0.5)
        assert notify.count("WATCHDOG") >= 4  # every 50 ms while healthy
        code, seconds = await serve.terminate(GRACE + 10)
        assert "STOPPING" in await notify.wait_for("STOPPING", 1)
        assert code == 0 and seconds < GRACE + 3
        assert notify.count("READY") == 1
    finally:
        serve.kill()
        notify.close()


async def test_sigterm_mid_upload_releases_leases_and_the_job_resumes_exactly_once(
    tmp_path: Path, fake_llm: Any, emulator: Any
) -> None:
    """SIGTERM while a job generates and uploads: no new LLM call starts, streams get `shutdown`, exit 0
    within the grace period, no lease is left held; the next start finishes the job with every item
    uploaded once."""
    llm = await fake_llm(latency=0.05)
    # Slow creates: the drain waits for them, long enough for new LLM calls to start if they could.
    ado = await emulator(faults=FaultConfig(latency_seconds=0.3, routes=frozenset({"create"})))
    notify = NotifySocket()
    settings = _settings(
        tmp_path,
        llm={"provider": "openai", "base_url": llm.base_url, "api_key_env": None},
        azure_devops={"target": "ado", "organization_url": ado.url, "upload_mode": "streaming"},
    )
    serve = Serve(tmp_path, settings, {"NOTIFY_SOCKET": notify.address, "AZURE_DEVOPS_PAT": "ops-test-pat-1"})
    try:
        base = await serve.start()
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{base}/api/jobs", json={"vision": VISION}) as resp:
                job_id = (await resp.json())["job_id"]
            seen = Seen()
            async with session.get(f"{base}/api/progress/stream/{job_id}") as stream:
                reader = asyncio.create_task(read_stream(stream, seen))
                await until(
                    lambda: any(f.event == "upload" and f.data["state"] == "uploaded" for f in seen.frames),
                    20,
                )
                assert not any(f.event == "final" for f in seen.frames)
                assert serve.proc is not None
                stopped_at = time.monotonic()
                serve.proc.send_signal(signal.SIGTERM)  # mid-generation, mid-upload
                await notify.wait_for("STOPPING", 5)
                stopping_at = time.monotonic()
                async with asyncio.timeout(GRACE + 5):
                    await reader
        assert seen.frames[-1].event == "shutdown"
        assert await serve.wait(GRACE + 5) == 0
        assert time.monotonic() - stopped_at < GRACE + 3
        late = [t for t, _ in llm.fake.requests if t > stopping_at + 0.05]
        assert late == [], "no LLM call starts once shutdown began"
        with sqlite3.connect(f"file:{settings['database']['path']}?mode=ro", uri=True) as db:
            status = db.execute("SELECT status FROM jobs WHERE id = ?", (job_id,)).fetchone()[0]
            held = db.execute("SELECT count(*) FROM items WHERE state = 'in_flight'").fetchone()[0]
        assert status == "running" and held == 0

        base = await serve.start()
        async with aiohttp.ClientSession() as session:
            job = await _until_finished(session, f"{base}/api/jobs/{job_id}")
            assert job["status"] == "completed", job
        with sqlite3.connect(f"file:{settings['database']['path']}?mode=ro", uri=True) as db:
            rows = db.execute("SELECT state, ado_id FROM items WHERE job_id = ?", (job_id,)).fetchall()
        assert rows and all(state == "uploaded" for state, _ in rows)
        ado_ids = [ado_id for _, ado_id in rows]
        assert len(set(ado_ids)) == len(ado_ids) == len(ado.state.items)  # each item created once
        assert (await serve.terminate(GRACE + 10))[0] == 0
    finally:
        serve.kill()
        notify.close()


async def _until_finished(session: aiohttp.ClientSession, url: str) -> dict[str, Any]:
    async with asyncio.timeout(30):
        while True:
            async with session.get(url) as resp:
                job: dict[str, Any] = await resp.json()
            if job["status"] not in ("queued", "running"):
                return job
            await asyncio.sleep(0.05)
