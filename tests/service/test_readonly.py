"""``backlogd status`` and ``backlogd export`` open the store and nothing else: no process pool, no HTTP
session, no emulator. Watched through Python's audit events (PEP 578), which every socket and child
process raises, so nothing of the product is replaced for the test."""

from __future__ import annotations

import asyncio
import contextlib
import io
import sys
from collections.abc import Iterator
from pathlib import Path

import yaml

from outbox.store import Store
from service.cli import main
from tests.jobrows import OPTIONS, VISION

# What starting a process pool (the fork server's socket), an emulator (a listening socket) or an HTTP
# connection raises; opening SQLite raises none of them (nor does an event loop's self-pipe, which is
# a socket pair: created, never bound or connected).
_WATCHED = (
    "socket.bind",
    "socket.connect",
    "subprocess.",
    "os.fork",
    "os.posix_spawn",
    "os.exec",
    "os.system",
)
_recording: list[list[str]] = []


def _hook(event: str, _args: tuple[object, ...]) -> None:
    if _recording and event.startswith(_WATCHED):
        _recording[-1].append(event)


sys.addaudithook(_hook)  # audit hooks cannot be removed: it records only inside ``watched()``


@contextlib.contextmanager
def watched() -> Iterator[list[str]]:
    events: list[str] = []
    _recording.append(events)
    try:
        yield events
    finally:
        _recording.pop()


def _config(tmp_path: Path) -> Path:
    """Settings whose target is the embedded emulator: a full build would start it."""
    db = tmp_path / "state" / "backlogd.sqlite3"
    db.parent.mkdir()

    async def one_job() -> None:
        async with Store.open(db) as store:
            await store.create_job("job-1", VISION, OPTIONS, {})

    asyncio.run(one_job())
    config = tmp_path / "settings.yaml"
    settings = {"database": {"path": str(db)}, "azure_devops": {"target": "emulator"}}
    config.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return config


def test_status_and_export_open_no_socket_and_start_no_process(tmp_path: Path) -> None:
    """status (one job and the list) and export answer from the store alone: not one socket is opened
    and no child process starts, while ``check`` with the same settings does open sockets."""
    config = str(_config(tmp_path))
    with watched() as events, contextlib.redirect_stdout(io.StringIO()) as out:
        assert main(["status", "job-1", "--config", config]) == 0
        assert main(["status", "--config", config]) == 0
        assert main(["export", "job-1", "--format", "md", "--config", config]) == 0
    assert events == []
    assert '"status": "queued"' in out.getvalue() and "# t" in out.getvalue()
    assert not (tmp_path / "state" / "emulator-journal.jsonl").exists()
    with watched() as events, contextlib.redirect_stdout(io.StringIO()):
        main(["check", "--config", config])
    assert "socket.bind" in events  # the watch sees what a full build does
