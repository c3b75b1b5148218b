"""systemd's notify protocol: one datagram on ``$NOTIFY_SOCKET`` per state change.

``READY=1`` once the service can serve, ``WATCHDOG=1`` from the event loop while it is healthy,
``STOPPING=1`` on shutdown. Without ``NOTIFY_SOCKET`` (not under systemd) every call is a no-op.
The protocol is one ``sendto`` on an AF_UNIX datagram socket, so no library is needed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping

import structlog

log = structlog.get_logger("backlogd.sdnotify")


class Notifier:
    def __init__(self, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        address = env.get("NOTIFY_SOCKET", "")
        # An address starting with "@" is in the abstract namespace: a leading NUL byte.
        self._address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        self.watchdog_seconds = int(usec) / 1_000_000 if usec.isdigit() and int(usec) > 0 else None
        pid = env.get("WATCHDOG_PID", "")
        if pid and pid != str(os.getpid()):  # the watchdog is meant for another process (sd_watchdog_enabled)
            self.watchdog_seconds = None
        self._sock: socket.socket | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._address)

    def notify(self, *assignments: str) -> None:
        if not self._address:
            return
        if self._sock is None:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            self._sock.setblocking(False)
        try:
            self._sock.sendto("\n".join(assignments).encode(), self._address)
        except OSError as exc:  # systemd went away or the socket is full: never fatal
            log.warning("sd_notify_failed", error=str(exc))

    def ready(self, status: str = "") -> None:
        self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def stopping(self) -> None:
        self.notify("STOPPING=1", "STATUS=shutting down")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    @contextlib.asynccontextmanager
    async def watchdog(self, healthy: Callable[[], Awaitable[bool]]) -> AsyncIterator[None]:
        """Ping at half the watchdog interval from the event loop, only while ``await healthy()``: a
        blocked loop or a failing health check stops the pings and systemd restarts the service."""
        task = None
        if self.enabled and self.watchdog_seconds:
            task = asyncio.create_task(self._ping(self.watchdog_seconds / 2, healthy), name="sd-watchdog")
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)

    async def _ping(self, interval: float, healthy: Callable[[], Awaitable[bool]]) -> None:
        while True:
            if await healthy():
                self.notify("WATCHDOG=1")
            else:
                log.warning("watchdog_unhealthy")
            await asyncio.sleep(interval)
