"""A write-ahead journal for the embedded emulator, so its work items survive a restart of the service.

Every successful write (POST/PATCH/PUT/DELETE outside ``/_emulator``, and every reset) is appended as
one JSON line and
flushed before the response goes out; on start the lines are replayed, in order, through the
emulator's own HTTP API. Ids come from one org-wide counter, so the replay gives every work item,
plan and suite the id it had: the ids and links the service stored stay valid.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.typedefs import Handler

JOURNAL: web.AppKey[Journal] = web.AppKey("emulator_journal")
_WRITES = frozenset({"POST", "PATCH", "PUT", "DELETE"})
_KEPT_HEADERS = ("Content-Type", "Accept")


class Journal:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.replaying = False
        path.parent.mkdir(parents=True, exist_ok=True)
        self._drop_cut_line()
        self._file = path.open("a", encoding="utf-8")

    def _drop_cut_line(self) -> None:
        """A crash mid-write leaves a partial last line (its write never answered): cut it off so new
        lines do not append to it."""
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            self.path.write_bytes(data[: data.rfind(b"\n") + 1])

    def entries(self) -> list[dict[str, Any]]:
        lines = self.path.read_text(encoding="utf-8").splitlines()
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by a crash mid-write: the write never answered
                break
        return out

    def append(self, entry: dict[str, Any]) -> None:
        self._file.write(json.dumps(entry) + "\n")
        self._file.flush()  # in the OS before the client hears back: survives kill -9 of the service

    def close(self) -> None:
        self._file.close()


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
        journal.append(
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
    entries = journal.entries()
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
