"""SSE clients that follow one job across service restarts, reconnecting with ``Last-Event-ID``,
and remember the seq of every event they were sent (so the test can check: each once, in order)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import aiohttp

RECONNECT_SECONDS = 0.05
_DOWN = (aiohttp.ClientError, ConnectionError, TimeoutError)


@dataclass
class Activity:
    """Events seen by every watcher together: the kill schedule waits on this, not on wall time."""

    events: int = 0
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def note(self) -> None:
        self.events += 1
        self.changed.set()

    async def wait_for(self, count: int, within: float) -> bool:
        """True once ``events >= count``; False after ``within`` seconds."""
        deadline = time.monotonic() + within
        while self.events < count:
            self.changed.clear()
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), left)
        return True


@dataclass
class Watcher:
    """One EventSource-like client of ``GET /api/progress/stream/{job}``."""

    job_id: str
    name: str
    base_url: Callable[[], str]  # the service's current address (it may change on restart)
    activity: Activity
    seqs: list[int] = field(default_factory=list)
    connects: int = 0
    no_content: int = 0
    finished: bool = False
    types: dict[int, str] = field(default_factory=dict)

    @property
    def last(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    async def follow(self, session: aiohttp.ClientSession) -> None:
        """Connect, read, reconnect after any drop, until ``final`` or a 204 (finished, nothing new)."""
        while not self.finished:
            with contextlib.suppress(*_DOWN):  # the service is down or restarting: try again shortly
                await self._connect_once(session)
            if not self.finished:
                await asyncio.sleep(RECONNECT_SECONDS)

    async def _connect_once(self, session: aiohttp.ClientSession) -> None:
        headers = {"Accept": "text/event-stream"}
        if self.seqs:
            headers["Last-Event-ID"] = str(self.last)
        url = f"{self.base_url()}/api/progress/stream/{self.job_id}"
        timeout = aiohttp.ClientTimeout(total=None, connect=2.0, sock_read=30.0)
        async with session.get(url, headers=headers, timeout=timeout) as resp:
            self.connects += 1
            if resp.status == 204:
                self.no_content += 1
                self.finished = True
                return
            if resp.status != 200:
                return  # e.g. 503 while the service drains
            await self._read(resp)

    async def _read(self, resp: aiohttp.ClientResponse) -> None:
        event_id: str | None = None
        event_type = "message"
        data: list[str] = []
        async for raw in resp.content:
            line = raw.decode("utf-8").rstrip("\r\n")
            if not line:
                if event_id is not None and data:
                    self._record(int(event_id), event_type, "\n".join(data))
                    if event_type == "final":
                        self.finished = True
                        return
                event_id, event_type, data = None, "message", []
                continue
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "id":
                event_id = value
            elif name == "event":
                event_type = value
            elif name == "data":
                data.append(value)

    def _record(self, seq: int, event_type: str, data: str) -> None:
        json.loads(data)  # every frame's data must be JSON
        self.seqs.append(seq)
        self.types[seq] = event_type
        self.activity.note()


def sequence_problems(watcher: Watcher, last_seq: int) -> list[str]:
    """Why the watcher's seqs are not exactly 1..last_seq in order (empty when they are)."""
    problems: list[str] = []
    seen = watcher.seqs
    repeats = sorted(s for s, n in Counter(seen).items() if n > 1)
    if repeats:
        problems.append(f"{watcher.name}: events seen twice: {repeats[:10]}")
    disorder = [(a, b) for a, b in itertools.pairwise(seen) if b <= a]
    if disorder:
        problems.append(f"{watcher.name}: out of order: {disorder[:5]}")
    missing = sorted(set(range(1, last_seq + 1)) - set(seen))
    if missing:
        problems.append(f"{watcher.name}: missed {len(missing)} events, first {missing[:10]}")
    extra = sorted(s for s in set(seen) if s > last_seq or s < 1)
    if extra:
        problems.append(f"{watcher.name}: unknown seqs {extra[:10]}")
    if watcher.types.get(last_seq) != "final":
        problems.append(f"{watcher.name}: the last event {last_seq} was not seen as 'final'")
    return problems
