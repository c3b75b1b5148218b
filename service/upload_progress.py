"""Upload progress: every committed event passes through here on its way to the broadcaster, and the
upload outcomes it reports feed the job's counts, published as a debounced ``progress`` event.

It sits between the relay (which publishes the outcomes) and the broadcaster, and needs neither the
relay nor the clients: the composition root can build it first and hand it to both.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from typing import Any

from outbox.backend import StoreBackend
from outbox.records import EventRow, NewEvent
from service.edit_events import AZURE_DEVOPS, edit_event
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
        self._notes: set[asyncio.Task[None]] = set()  # conflict edit events being written

    def track(self, job_id: str, progress: Progress) -> None:
        self._progress[job_id] = progress

    def observe(self, events: list[EventRow]) -> None:
        """Publish committed events; upload states feed the job's counts."""
        self._publish(events)
        for ev in events:
            if ev.type == "upload" and ev.payload.get("state") == ItemState.CONFLICT:
                item_id = str(ev.payload["id"])
                self._own(self._conflict_edit(ev.job_id, item_id), f"conflict-{item_id}")
            progress = self._progress.get(ev.job_id)
            if ev.type != "upload" or progress is None:
                continue
            kind, state = ev.payload["kind"], ev.payload["state"]
            if ev.payload.get("update"):
                continue  # an update of a work item counted when it was created
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

    def _own(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._notes.add(task)
        task.add_done_callback(self._notes.discard)

    async def _conflict_edit(self, job_id: str, item_id: str) -> None:
        """The uploader found the work item changed in Azure DevOps: every page hears it as an edit."""
        row = next((r for r in await self._store.items(job_id) if r.id == item_id), None)
        if row is not None:
            ev = edit_event("conflict", row, AZURE_DEVOPS, item_id=item_id)
            self._publish(await self._store.append_events(job_id, [ev]))

    async def close(self) -> None:
        tasks = [*self._tick.values(), *self._notes]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
