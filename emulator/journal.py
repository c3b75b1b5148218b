"""A write-ahead journal for the embedded emulator, so its work items survive a restart of the service.

Every successful write (POST/PATCH/PUT/DELETE outside ``/_emulator``, and every reset) is appended as
one JSON line and flushed before the response goes out; on start the lines are replayed, in order,
through the emulator's own HTTP API. Ids come from one org-wide counter, so the replay gives every
work item, plan and suite the id it had: the ids and links the service stored stay valid.

The file is written by one thread of its own, never by the event loop (a slow disk stalls only the
writes waiting for it): a write hands its line over and awaits the flush; lines that queue up while
the disk is busy go out together, in order, with one flush.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import queue
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

JOURNAL: web.AppKey[Journal] = web.AppKey("emulator_journal")
_WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_KEPT_HEADERS = ("Content-Type", "Accept")


_Line = tuple[str, Callable[[BaseException | None], None]]  # the text and who hears it was flushed


class Journal:
    """Open with ``await Journal.open(path)``; ``await aclose()`` writes what is queued, then stops."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.replaying = False
        path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_cut_line()
        self._file = path.open("a", encoding="utf-8")
        self._lines: queue.SimpleQueue[_Line | None] = queue.SimpleQueue()  # None: write the rest, stop
        self._writer = threading.Thread(target=self._write_lines, name="emulator-journal", daemon=True)
        self._writer.start()

    @classmethod
    async def open(cls, path: Path) -> Journal:
        return await asyncio.to_thread(cls, path)  # it reads and may cut the file: not on the loop

    def _drop_cut_line(self) -> None:
        """A crash mid-write leaves a partial last line (its write never answered): cut it off so new
        lines do not append to it."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            self.path.write_bytes(data[: data.rfind(b"\n") + 1])

    async def entries(self) -> list[dict[str, Any]]:
        return await asyncio.to_thread(self._read_entries)

    def _read_entries(self) -> list[dict[str, Any]]:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a crash mid-write: the write never answered
                break
        return out

    async def append(self, entry: dict[str, Any]) -> None:
        """Journal one write; returns once its line is flushed to the OS (it survives kill -9)."""
        loop = asyncio.get_running_loop()
        flushed: asyncio.Future[None] = loop.create_future()

        def settle(error: BaseException | None) -> None:  # on the writer thread
            loop.call_soon_threadsafe(_settle, flushed, error)

        self._lines.put((json.dumps(entry) + "\n", settle))
        await flushed

    def _write_lines(self) -> None:
        stop = False
        while not stop:
            batch = [self._lines.get()]
            while not self._lines.empty():
                batch.append(self._lines.get_nowait())
            stop = None in batch  # aclose() queues it last: every line before it is written
            lines = [line for line in batch if line is not None]
            error: BaseException | None = None
            try:
                self._file.write("".join(text for text, _ in lines))
                self._file.flush()
            except OSError as exc:  # the writes waiting for this flush fail; the journal carries on
                error = exc
            for _, settle in lines:
                with contextlib.suppress(RuntimeError):  # the loop that waited has closed
                    settle(error)
        self._file.close()

    async def aclose(self) -> None:
        if self._writer.is_alive():
            self._lines.put(None)
            await asyncio.to_thread(self._writer.join)


def _settle(flushed: asyncio.Future[None], error: BaseException | None) -> None:
    if flushed.done():  # the request was cancelled: nobody waits for it
        return
    if error is None:
        flushed.set_result(None)
    else:
        flushed.set_exception(error)


@web.middleware
async def journal_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    journal = request.app.get(JOURNAL)
    body = await request.read() if journal is not None and request.method in _WRITES else b""
    response = await handler(request)
    if (
        journal is not None
        and not journal.replaying
        and request.method in _WRITES
        and response.status < 300
        and not request.path.startswith("/_emulator")
    ):
        await journal.append(
            {
                "method": request.method,
                "path": request.path_qs,
                "headers": {h: request.headers[h] for h in _KEPT_HEADERS if h in request.headers},
                "body": base64.b64encode(body).decode(),
            }
        )
    return response


async def replay(journal: Journal, base_url: str, pat: str, reset: Callable[[], None]) -> int:
    """Send every journaled write again, in order (a journaled reset calls ``reset``); returns how many
    entries were replayed."""
    entries = await journal.entries()
    if not entries:
        return 0
    auth = "Basic " + base64.b64encode(f":{pat}".encode()).decode()
    journal.replaying = True
    try:
        async with aiohttp.ClientSession() as session:
            for entry in entries:
                if entry.get("reset"):
                    reset()
                    continue
                headers = {**entry["headers"], "Authorization": auth, "X-TFS-FedAuthRedirect": "Suppress"}
                async with session.request(
                    entry["method"],
                    base_url + entry["path"],
                    data=base64.b64decode(entry["body"]),
                    headers=headers,
                ) as resp:
                    await resp.read()
    finally:
        journal.replaying = False
    return len(entries)
