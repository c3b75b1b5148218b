"""Pauses shared between instances: one instance's 429 (Retry-After) pauses every instance.

Each instance keeps its own adaptive limiters (the concurrency window stays local). A
``SharedLimiter`` is one of them that, when paused, also records the pause for its upstream identity
(``llm:<base url>``, ``ado:<identity hash>``) in the database; the notification it sends makes every
other instance hold its own limiter for that identity until the same moment.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import structlog

from hardware.aimd import AdaptiveLimiter
from outbox.pg import leases
from outbox.pg.store import PgStore

log = structlog.get_logger("backlogd.pacing")


class SharedLimiter(AdaptiveLimiter):
    """An adaptive limiter whose pauses are told to the other instances through ``share``."""

    def __init__(self, *args: Any, identity: str, share: Callable[[str, float], None], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.identity = identity
        self._share = share

    def pause(self, seconds: float) -> None:
        super().pause(seconds)
        if seconds > 0:
            self._share(self.identity, seconds)

    def hold(self, seconds: float) -> None:
        """A pause another instance was told about: applied here, not shared again."""
        super().pause(seconds)


class SharedPauses:
    """The registry of shared limiters of one instance, and the link to the database."""

    def __init__(self, store: PgStore, wall: Callable[[], float] = time.time) -> None:
        self._store = store
        self._wall = wall
        self._limiters: dict[str, SharedLimiter] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def maker(self, identity: str) -> Callable[..., AdaptiveLimiter]:
        """A drop-in for ``AdaptiveLimiter(...)`` whose limiter shares its pauses as ``identity``."""

        def make(*args: Any, **kwargs: Any) -> AdaptiveLimiter:
            limiter = SharedLimiter(*args, identity=identity, share=self._share, **kwargs)
            self._limiters[identity] = limiter
            return limiter

        return make

    def _share(self, identity: str, seconds: float) -> None:
        task = asyncio.create_task(self._record(identity, self._wall() + seconds), name=f"pause-{identity}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _record(self, identity: str, until: float) -> None:
        try:
            await leases.share_pause(self._store, identity, until)
        except Exception as exc:  # the local pause holds regardless; the others learn at the next one
            log.warning("pause_not_shared", identity=identity, error=str(exc)[:200])

    def on_notify(self, payload: str) -> None:
        instance, identity, until = payload.rsplit(" ", 2)
        if instance != self._store.instance:
            self._apply(identity, float(until))

    async def refresh(self) -> None:
        """Re-read every pause in force (after a reconnect: notifications may have been missed)."""
        for identity, until in (await leases.pauses(self._store)).items():
            self._apply(identity, until)

    def _apply(self, identity: str, until: float) -> None:
        limiter = self._limiters.get(identity)
        if limiter is not None:
            limiter.hold(until - self._wall())
            log.info("pause_received", identity=identity, seconds=round(until - self._wall(), 3))

    async def close(self) -> None:
        await asyncio.gather(*self._tasks, return_exceptions=True)
