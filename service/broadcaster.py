"""In-memory fan-out of committed job events to live subscribers (SSE clients, the CLI bar).

Events reach here only after they are committed to ``job_events``, so a subscriber that misses
something (it was too slow and got dropped, or reconnected) replays it from the table by seq.
Each subscriber has its own bounded queue: a slow one is dropped without slowing anyone else.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from outbox.records import EventRow


class Subscription:
    def __init__(self, broadcaster: Broadcaster, job_id: str, size: int) -> None:
        self.job_id = job_id
        self.queue: asyncio.Queue[EventRow | None] = asyncio.Queue(maxsize=size)
        self.dropped = False
        self._owner = broadcaster

    def offer(self, event: EventRow) -> bool:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped = True
            return False
        return True

    async def get(self) -> EventRow | None:
        """The next event, or None once the subscription was dropped or closed."""
        if self.dropped and self.queue.empty():
            return None
        return await self.queue.get()

    def close(self) -> None:
        self._owner.unsubscribe(self)
        if not self.queue.full():
            self.queue.put_nowait(None)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self._owner.unsubscribe(self)


class Broadcaster:
    def __init__(self, queue_size: int = 256) -> None:
        self._subs: dict[str, set[Subscription]] = {}
        self._size = queue_size

    def subscribe(self, job_id: str) -> Subscription:
        sub = Subscription(self, job_id, self._size)
        self._subs.setdefault(job_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.job_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.job_id]

    def publish(self, events: Iterable[EventRow]) -> None:
        for event in events:
            for sub in list(self._subs.get(event.job_id, ())):
                if not sub.offer(event):
                    self.unsubscribe(sub)  # too slow: it will replay from the table

    def client_count(self, job_id: str | None = None) -> int:
        if job_id is not None:
            return len(self._subs.get(job_id, ()))
        return sum(len(s) for s in self._subs.values())

    def watched_jobs(self) -> list[str]:
        """The jobs that have at least one subscriber."""
        return list(self._subs)

    def close_all(self) -> None:
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.close()
