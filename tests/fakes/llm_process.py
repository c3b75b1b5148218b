"""The fake OpenAI-compatible server as its own process (so its JSON work does not share the event
loop of what is measured): start it, read back its port, stop it and read its STATS line."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


async def start_fake(latency: float, *args: str) -> tuple[asyncio.subprocess.Process, str]:
    """Start ``python -m tests.fakes.openai_server``; returns the process and its ``/v1`` base URL."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.openai_server",
        "--port",
        "0",
        "--latency",
        str(latency),
        *args,
        stdout=asyncio.subprocess.PIPE,
        cwd=str(ROOT),
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
    if not line.startswith("LISTENING"):
        proc.kill()
        await proc.wait()
        raise RuntimeError(f"fake LLM did not start: {line!r}")
    return proc, f"http://127.0.0.1:{line.split()[1]}/v1"


async def stop_fake(proc: asyncio.subprocess.Process) -> dict[str, Any]:
    """SIGTERM it and return the STATS it prints on the way out."""
    proc.terminate()
    out, _ = await proc.communicate()
    stats = [ln for ln in out.decode().splitlines() if ln.startswith("STATS ")]
    return json.loads(stats[-1][6:]) if stats else {}
