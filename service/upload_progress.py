"""Upload progress: every committed event passes through here on its way to the broadcaster, and the
upload outcomes it reports feed the job's counts, published as a debounced ``progress`` event.

It sits between the relay (which publishes the outcomes) and the broadcaster, and needs neither the
relay nor the clients: the composition root can build it first and hand it to both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from outbox.backend import StoreBackend
from outbox.records import EventRow, NewEvent
from service.progress import Progress
from vocab import FAILED_ITEM_STATES, ItemState


class UploadProgress:
    def __init__(
        self,
        store: StoreBackend,
        publish: Callable[[list[EventRow]], None],
        *,
        interval: float = 0.25,
    ) -> None:
        self._store = store
        self._publish = publish
        self._interval = interval
        self._progress: dict[str, Progress] = {}
        self._tick: dict[str, asyncio.Task[None]] = {}

    def track(self, job_id: str, progress: Progress) -> None:
        self._progress[job_id] = progress

    def observe(self, events: list[EventRow]) -> None:
        """Publish committed events; upload states feed the job's counts."""
        self._publish(events)
        for ev in events:
            progress = self._progress.get(ev.job_id)
            if ev.type != "upload" or progress is None:
                continue
            kind, state = ev.payload["kind"], ev.payload["state"]
            if state == ItemState.UPLOADED:
                progress.uploaded[kind] += 1
            elif state in FAILED_ITEM_STATES:
                progress.failed[kind] += 1
            elif state == ItemState.PENDING:
                progress.failed[kind] = max(0, progress.failed[kind] - 1)
            if ev.job_id not in self._tick:
                self._tick[ev.job_id] = asyncio.get_running_loop().create_task(self._debounced(ev.job_id))

    async def flush(self, job_id: str) -> None:
        """The job's upload settled: its last progress now, and no debounced one after its final event."""
        await self.stop(job_id)
        await self._emit(job_id)

    async def stop(self, job_id: str) -> None:
        tick = self._tick.pop(job_id, None)
        if tick is not None:
            tick.cancel()
            await asyncio.gather(tick, return_exceptions=True)

    def forget(self, job_id: str) -> None:
        self._progress.pop(job_id, None)
        tick = self._tick.pop(job_id, None)
        if tick is not None:
            tick.cancel()

    def tracked_jobs(self) -> set[str]:
        return set(self._progress) | set(self._tick)

    async def _debounced(self, job_id: str) -> None:
        try:
            await asyncio.sleep(self._interval)
            await self._emit(job_id)
        finally:
            self._tick.pop(job_id, None)

    async def _emit(self, job_id: str) -> None:
        progress = self._progress.get(job_id)
        if progress is None:
            return
        progress.update_percent()
        payload = progress.snapshot(time.monotonic(), time.time())
        self._publish(await self._store.append_events(job_id, [NewEvent(type="progress", payload=payload)]))

    async def close(self) -> None:
        for task in list(self._tick.values()):
            task.cancel()
        await asyncio.gather(*self._tick.values(), return_exceptions=True)
