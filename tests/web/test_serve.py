"""``backlogd serve`` as a real process: it prints its URL, serves, and on SIGTERM ends SSE streams with a
``shutdown`` event and exits 0 within the grace period, leaving the job resumable."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import aiohttp

from tests.web.sse_client import Seen, read_stream, until

CONFIG = """\
database: {{path: "{db}"}}
server: {{host: 127.0.0.1, port: 0, shutdown_grace_seconds: 2}}
progress: {{heartbeat_seconds: 0.05}}
workflow: {{include_qa: false, limits: {{max_epics: 2, max_features_per_epic: 2}}}}
azure_devops: {{upload_mode: manual}}
logging: {{level: warning}}
"""


async def test_serve_prints_its_url_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """The server announces its URL, streams a job, and on SIGTERM sends `shutdown` to streams, exits 0."""
    config = tmp_path / "settings.yaml"
    config.write_text(CONFIG.format(db=tmp_path / "db.sqlite3"), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "web.main",
        "serve",
        "--config",
        str(config),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=Path(__file__).parents[2],
    )
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line.startswith("backlogd: serving on http://127.0.0.1:")
        base = line.split(" on ")[1].strip().rstrip("/")
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/readyz") as resp:
                assert resp.status == 200
            async with session.post(
                f"{base}/api/jobs", json={"vision": "Riders rent bikes. Staff fix bikes."}
            ) as resp:
                job_id = (await resp.json())["job_id"]
            seen = Seen()
            async with session.get(f"{base}/api/progress/stream/{job_id}") as stream:
                reader = asyncio.create_task(read_stream(stream, seen))
                await until(lambda: any(f.data.get("status") == "awaiting_upload" for f in seen.frames), 10)
                proc.send_signal(signal.SIGTERM)
                await asyncio.wait_for(reader, 5)
        assert seen.frames[-1].event == "shutdown"
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
