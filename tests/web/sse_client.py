"""A minimal EventSource for tests: reads frames off a real HTTP connection, reconnects with
Last-Event-ID like a browser would, and records everything it saw."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp


@dataclass(frozen=True)
class Frame:
    id: int | None
    event: str
    data: Any


@dataclass
class Seen:
    frames: list[Frame] = field(default_factory=list)
    comments: int = 0
    retry: int | None = None

    def ids(self) -> list[int]:
        return [f.id for f in self.frames if f.id is not None]


async def read_stream(resp: aiohttp.ClientResponse, seen: Seen, *, limit: int | None = None) -> None:
    """Parse frames until the server ends the stream (or ``limit`` frames were read)."""
    fields: dict[str, str] = {}
    data: list[str] = []
    async for raw in resp.content:
        line = raw.decode("utf-8").rstrip("\r\n")
        if line == "":
            if data:
                ident = fields.get("id")
                seen.frames.append(
                    Frame(
                        int(ident) if ident else None,
                        fields.get("event", "message"),
                        json.loads("\n".join(data)),
                    )
                )
                if limit is not None and len(seen.frames) >= limit:
                    return
            fields, data = {}, []
        elif line.startswith(":"):
            seen.comments += 1
        else:
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            elif name == "retry":
                seen.retry = int(value)
            else:
                fields[name] = value


async def follow(
    session: aiohttp.ClientSession, url: str, seen: Seen, *, last_id: int = 0, max_connects: int = 20
) -> int:
    """Follow a job to its end like EventSource: reconnect after a clean close until 204 or
    ``final``. Returns how many connections it took."""
    for attempt in range(1, max_connects + 1):
        ids = seen.ids()
        headers = {"Last-Event-ID": str(ids[-1] if ids else last_id)}
        async with session.get(url, headers=headers) as resp:
            if resp.status == 204:
                return attempt
            assert resp.status == 200, resp.status
            await read_stream(resp, seen)
    return max_connects


async def until(condition: Callable[[], bool], limit: float = 5.0) -> None:
    """Wait (polling every few ms, bounded) until ``condition()`` holds."""
    async with asyncio.timeout(limit):
        while True:
            if condition():
                return
            await asyncio.sleep(0.005)
