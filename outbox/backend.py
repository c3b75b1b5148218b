"""The store interface both backends implement, and the choice between them.

``Store`` (SQLite, ``outbox/store.py``) is the embedded default: one process, one file. ``PgStore``
(PostgreSQL, ``outbox/pg/``) lets several backlogd instances share one database; it adds job leases,
shared upstream pauses and ``LISTEN/NOTIFY`` wake-ups on top of the same behaviour. The service layers
type against ``StoreBackend``; the outbox queue operations (``outbox/queue.py``) dispatch to the
backend's SQL.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, Protocol

from outbox.pg.store import DISCONNECTS, LeaseLost, PgStore
from outbox.records import CallRow, EventRow, ItemMatch, ItemRow, JobRow, NewEvent, NewItem
from outbox.store import Store
from vocab import JobStatus
from vocab.options import JobOptions
from vocab.vision import Vision

__all__ = ["DISCONNECTS", "LeaseLost", "StoreBackend", "open_store"]


class StoreBackend(Protocol):
    """What the service and web layers may ask of a store, whichever database is behind it."""

    path: str

    def now(self) -> float: ...
    def transaction(self) -> AbstractAsyncContextManager[Any]: ...

    async def create_job(
        self,
        job_id: str,
        vision: Vision,
        options: JobOptions,
        metadata: dict[str, Any],
        *,
        max_queued: int | None = None,
        vision_key: str | None = None,
        copy_guard: Sequence[JobStatus] | None = None,
    ) -> list[EventRow] | None: ...
    async def get_job(self, job_id: str) -> JobRow | None: ...
    async def list_jobs(self, limit: int = 100) -> list[JobRow]: ...
    async def latest_with_key(self, vision_key: str, skip: Iterable[JobStatus]) -> JobRow | None: ...
    async def jobs_in(self, statuses: Iterable[JobStatus]) -> list[JobRow]: ...
    async def set_job_status(
        self,
        job_id: str,
        status: JobStatus,
        *,
        error: str | None = None,
        events: Sequence[NewEvent] = (),
        metadata: dict[str, Any] | None = None,
    ) -> list[EventRow]: ...
    async def merge_metadata(self, job_id: str, metadata: dict[str, Any]) -> None: ...
    async def append_events(self, job_id: str, events: Sequence[NewEvent]) -> list[EventRow]: ...
    async def events_after(self, job_id: str, after_seq: int, limit: int = 10_000) -> list[EventRow]: ...
    async def commit_call(
        self, call: CallRow, items: Sequence[NewItem], events: Sequence[NewEvent]
    ) -> list[EventRow]: ...
    async def stage_items(self, job_id: str, call_key: str, items: Sequence[NewItem]) -> None: ...
    async def apply_matches(
        self,
        job_id: str,
        matches: Sequence[ItemMatch],
        added: Sequence[NewItem],
        events: Sequence[NewEvent],
    ) -> list[EventRow]: ...
    async def calls(self, job_id: str) -> list[CallRow]: ...
    async def items(self, job_id: str) -> list[ItemRow]: ...
    async def item_counts(self, job_id: str) -> dict[str, dict[str, int]]: ...
    async def integrity_check(self) -> str: ...


Clock = Callable[[], float]


@asynccontextmanager
async def open_store(
    url: str | None, path: str, *, clock: Clock | None = None
) -> AsyncIterator[StoreBackend]:
    """``database.url`` (``postgresql://…``) selects PostgreSQL; without it, the SQLite file at ``path``."""
    tick = clock or time.time
    if url:
        async with PgStore.open(url, clock=tick) as pg:
            yield pg
    else:
        async with Store.open(path, clock=tick) as lite:
            yield lite
