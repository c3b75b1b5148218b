"""One dedicated connection that ``LISTEN``s on backlogd's channels, reconnecting with backoff.

Notifications are a hint, the tables are the truth: one sent while this connection was down is lost,
so after every (re)connect ``on_connect`` runs and the owner re-reads what it watches. Handlers run on
the event loop and must not block (they schedule work; they do not await it).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
import structlog

log = structlog.get_logger("backlogd.listener")

Handler = Callable[[str], None]


class Listener:
    def __init__(
        self,
        url: str,
        handlers: Mapping[str, Handler],
        *,
        on_connect: Callable[[], Awaitable[None]] | None = None,
        backoff: tuple[float, float] = (0.05, 5.0),
    ) -> None:
        self._url = url
        self._handlers = dict(handlers)
        self._on_connect = on_connect
        self._backoff = backoff
        self.connected = False

    async def run(self) -> None:
        """Listen until cancelled; a lost connection is re-opened after a growing pause."""
        delay = self._backoff[0]
        while True:
            closed = asyncio.Event()
            try:
                conn = await asyncpg.connect(self._url, timeout=5)
            except Exception as exc:  # never give up: the database may come back
                log.warning(
                    "listener_connect_failed", error=f"{type(exc).__name__}: {exc}"[:200], retry_in=delay
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff[1])
                continue
            try:
                conn.add_termination_listener(_closer(closed))
                for channel, handler in self._handlers.items():
                    await conn.add_listener(channel, _callback(handler))
                self.connected, delay = True, self._backoff[0]
                log.info("listener_connected", channels=sorted(self._handlers))
                if self._on_connect is not None:
                    await self._on_connect()
                await self._watch(conn, closed)
            except Exception as exc:  # a cut connection, or the re-read after connecting failed
                log.warning("listener_lost", error=f"{type(exc).__name__}: {exc}"[:200])
            finally:
                self.connected = False
                conn.terminate()
            await asyncio.sleep(delay)

    async def _watch(self, conn: asyncpg.Connection, closed: asyncio.Event) -> None:
        """Wait for the connection to close; a cheap query every few seconds notices a silent cut."""
        while not closed.is_set():
            try:
                await asyncio.wait_for(closed.wait(), timeout=2.0)
            except TimeoutError:
                await asyncio.wait_for(conn.fetchval("SELECT 1"), timeout=2.0)


def _closer(event: asyncio.Event) -> Callable[[Any], None]:
    return lambda _conn: event.set()


def _callback(handler: Handler) -> Callable[[Any, int, str, str], None]:
    def on_notify(_conn: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            handler(payload)
        except Exception:  # a bad payload must not stop the listener
            log.exception("notification_handler_failed", payload=payload[:200])

    return on_notify
