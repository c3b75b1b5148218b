"""The process pool dies with the service: after a ``kill -9`` of ``backlogd serve`` alone (not its
process group, as a crash or the OOM killer would), none of its worker, fork-server or
resource-tracker processes is left running."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import psutil

from tests.ops.procs import Serve


async def _descendants(pid: int, at_least: int, within: float) -> list[psutil.Process]:
    """The process's descendants, once there are ``at_least`` of them (the warmed pool)."""
    deadline = time.monotonic() + within
    while True:
        children = psutil.Process(pid).children(recursive=True)
        if len(children) >= at_least or time.monotonic() > deadline:
            return children
        await asyncio.sleep(0.05)


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    return [p for p in procs if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


async def test_kill_9_of_the_service_leaves_no_pool_process_behind(tmp_path: Path) -> None:
    """Every process the service started (resource tracker, fork server, its workers) is gone within 5 s
    of a SIGKILL sent to the service's own pid."""
    serve = Serve(
        tmp_path,
        {
            "server": {"host": "127.0.0.1", "port": 0},
            "database": {"path": str(tmp_path / "db.sqlite3")},
            "azure_devops": {"target": "none"},
        },
    )
    try:
        await serve.start()
        assert serve.proc is not None
        # resource tracker + fork server + the first worker (warmed at start)
        children = await _descendants(serve.proc.pid, at_least=3, within=20)
        assert len(children) >= 3, [p.cmdline() for p in children]
        os.kill(serve.proc.pid, signal.SIGKILL)
        await serve.wait(5)
        deadline = time.monotonic() + 5
        while _alive(children) and time.monotonic() < deadline:  # noqa: ASYNC110 (processes have no event)
            await asyncio.sleep(0.05)
        assert _alive(children) == []
    finally:
        serve.kill()
