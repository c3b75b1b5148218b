"""The PostgreSQL store (asyncpg): the same behaviour as the SQLite ``Store``, shared by instances.

Why asyncpg and not psycopg 3: both run on the event loop without threads, but asyncpg speaks the
wire protocol itself (no libpq to install), prepares and caches statements, and is the faster of the
two for the many small transactions an outbox makes; ``Connection.add_listener`` gives ``LISTEN``
without a polling loop. psycopg's strengths (libpq options, COPY, pipeline mode) are not needed here.

A pool of connections replaces SQLite's single writer: each transaction takes its own connection, and
PostgreSQL's row locks serialise what must be: the job row's ``UPDATE … last_seq`` reserves event
seqs, so events commit in seq order per job. Every event append also ``NOTIFY``s ``backlogd_events``
with ``"<instance> <job> <first seq> <last seq>"`` (delivered at commit), which wakes the other
instances' broadcasters. Jobs carry a lease and fence: while this instance holds a job (``leases.py``)
every event-appending write for it checks the fence, and a stale owner's commit raises ``LeaseLost``.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from outbox.errors import VisionTaken
from outbox.migrate import migrate_postgresql
from outbox.records import (
    MATCH_CALL_KEY,
    CallRow,
    EventRow,
    ItemMatch,
    ItemRow,
    JobRow,
    NewEvent,
    NewItem,
    job_columns,
)
from vocab import TERMINAL_JOB_STATES, JobStatus
from vocab.options import JobOptions
from vocab.vision import Vision

Clock = Callable[[], float]
EVENTS_CHANNEL = "backlogd_events"
JOBS_CHANNEL = "backlogd_jobs"
PAUSES_CHANNEL = "backlogd_pauses"


# What "the database went away" looks like from asyncpg (a restart, a network cut): work stops or
# backs off and resumes where it can; nothing committed is lost.
DISCONNECTS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,  # a connection cut in the middle of an operation
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, starting up (57P01, 57P03)
    asyncpg.exceptions.ObjectNotInPrerequisiteStateError,  # the database does not take connections
    asyncpg.exceptions.TooManyConnectionsError,
)


class LeaseLost(Exception):
    """This instance no longer holds the job's lease (another instance took it over): the write was
    refused and the job's local run must stop."""


class PgStore:
    """Owns a connection pool. Use ``async with PgStore.open(url) as store``."""

    def __init__(self, pool: asyncpg.Pool, url: str, clock: Clock, instance: str) -> None:
        self._pool = pool
        self._clock = clock
        self.url = url
        self.path = url.split("@")[-1]  # shown in logs: host/db, never a password
        self.instance = instance
        self._fences: dict[str, int] = {}  # job id → the fence this instance holds it under

    @classmethod
    @asynccontextmanager
    async def open(
        cls, url: str, *, clock: Clock = time.time, instance: str | None = None, max_size: int = 10
    ) -> AsyncIterator[PgStore]:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            await migrate_postgresql(conn)
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(url, min_size=1, max_size=max_size, timeout=5)
        try:
            yield cls(pool, url, clock, instance or uuid.uuid4().hex[:12])
        finally:
            try:  # graceful: wait for connections to come back, but never forever
                await asyncio.wait_for(pool.close(), timeout=5.0)
            except TimeoutError:
                pool.terminate()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[asyncpg.Connection]:
        """One transaction on a pooled connection; rolled back on any error (or cancellation)."""
        async with self._pool.acquire() as conn, conn.transaction():
            yield conn

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[asyncpg.Connection]:
        async with self._pool.acquire() as conn:
            yield conn

    def now(self) -> float:
        return self._clock()

    # ----- jobs -------------------------------------------------------------------------------

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
    ) -> list[EventRow] | None:
        """Insert a queued job; None (nothing written) when ``max_queued`` jobs already wait; with
        ``copy_guard`` (the statuses that hold no backlog) VisionTaken when a job of the same vision key in
        any other status exists. Admissions take one transaction-scoped advisory lock, so every
        instance's check-then-insert is serialised."""
        now = self.now()
        async with self.transaction() as db:
            if max_queued is not None:
                await db.execute("SELECT pg_advisory_xact_lock($1)", _ADMISSION_LOCK)
                waiting = await db.fetchval("SELECT COUNT(*) FROM jobs WHERE status = 'queued'")
                if int(waiting) >= max_queued:
                    return None
            if copy_guard is not None and vision_key is not None:
                await db.execute("SELECT pg_advisory_xact_lock($1)", _ADMISSION_LOCK)  # re-entrant
                taken = await db.fetchval(
                    "SELECT id FROM jobs WHERE vision_key = $1 AND NOT (status = ANY($2::text[]))"
                    " ORDER BY created_at DESC LIMIT 1",
                    vision_key,
                    [str(s) for s in copy_guard],
                )
                if taken is not None:
                    raise VisionTaken(str(taken))
            await db.execute(
                "INSERT INTO jobs(id, status, vision, options, metadata, created_at, updated_at, vision_key)"
                " VALUES ($1, 'queued', $2, $3, $4::jsonb, $5, $5, $6)",
                job_id,
                *job_columns(vision, options, metadata),
                now,
                vision_key,
            )
            events = await self.append_in(
                db, job_id, [NewEvent(type="stage", payload={"status": JobStatus.QUEUED})]
            )
            await db.execute("SELECT pg_notify($1, $2)", JOBS_CHANNEL, job_id)
            return events

    async def get_job(self, job_id: str) -> JobRow | None:
        async with self.reading() as db:
            row = await db.fetchrow(f"SELECT {_JOB_COLS} FROM jobs WHERE id = $1", job_id)
        return JobRow.from_db(row) if row else None

    async def list_jobs(self, limit: int = 100) -> list[JobRow]:
        async with self.reading() as db:
            rows = await db.fetch(f"SELECT {_JOB_COLS} FROM jobs ORDER BY created_at DESC LIMIT $1", limit)
        return [JobRow.from_db(r) for r in rows]

    async def latest_with_key(self, vision_key: str, skip: Iterable[JobStatus]) -> JobRow | None:
        """The newest job of this vision and target not in ``skip`` (index jobs_vision_key)."""
        sql = (
            f"SELECT {_JOB_COLS} FROM jobs WHERE vision_key = $1 AND NOT (status = ANY($2::text[]))"
            " ORDER BY created_at DESC LIMIT 1"
        )
        async with self.reading() as db:
            row = await db.fetchrow(sql, vision_key, [str(s) for s in skip])
        return JobRow.from_db(row) if row else None

    async def jobs_in(self, statuses: Iterable[JobStatus]) -> list[JobRow]:
        sql = f"SELECT {_JOB_COLS} FROM jobs WHERE status = ANY($1::text[]) ORDER BY created_at"
        async with self.reading() as db:
            rows = await db.fetch(sql, [str(s) for s in statuses])
        return [JobRow.from_db(r) for r in rows]

    async def set_job_status(
        self,
        job_id: str,
        status: JobStatus,
        *,
        error: str | None = None,
        events: Sequence[NewEvent] = (),
        metadata: dict[str, Any] | None = None,
    ) -> list[EventRow]:
        now = self.now()
        finished = now if status in TERMINAL_JOB_STATES else None
        async with self.transaction() as db:
            await db.execute(
                "UPDATE jobs SET status = $1, error = $2, updated_at = $3, finished_at = $4,"
                " metadata = CASE WHEN $5::jsonb IS NULL THEN metadata ELSE metadata || $5::jsonb END"
                " WHERE id = $6",
                str(status),
                error,
                now,
                finished,
                None if metadata is None else json.dumps(metadata),
                job_id,
            )
            return await self.append_in(db, job_id, events)

    async def merge_metadata(self, job_id: str, metadata: dict[str, Any]) -> None:
        async with self.transaction() as db:
            await db.execute(
                "UPDATE jobs SET metadata = metadata || $1::jsonb, updated_at = $2 WHERE id = $3",
                json.dumps(metadata),
                self.now(),
                job_id,
            )

    # ----- events -----------------------------------------------------------------------------

    async def append_events(self, job_id: str, events: Sequence[NewEvent]) -> list[EventRow]:
        async with self.transaction() as db:
            return await self.append_in(db, job_id, events)

    async def events_after(self, job_id: str, after_seq: int, limit: int = 10_000) -> list[EventRow]:
        sql = (
            "SELECT job_id, seq, type, payload, created_at FROM job_events"
            " WHERE job_id = $1 AND seq > $2 ORDER BY seq LIMIT $3"
        )
        async with self.reading() as db:
            rows = await db.fetch(sql, job_id, after_seq, limit)
        return [
            EventRow.model_construct(
                job_id=r["job_id"],
                seq=r["seq"],
                type=r["type"],
                payload=json.loads(r["payload"]),
                created_at=r["created_at"],
            )
            for r in rows
        ]

    async def append_in(
        self, db: asyncpg.Connection, job_id: str, events: Sequence[NewEvent]
    ) -> list[EventRow]:
        """Reserve seqs on the job row (its lock orders commits), insert the events and notify.
        While this instance holds the job, the reservation is fenced: a stale owner gets LeaseLost."""
        if not events:
            return []
        n = len(events)
        fence = self._fences.get(job_id)
        row = await db.fetchrow(
            "UPDATE jobs SET last_seq = last_seq + $1 WHERE id = $2 AND ($3::bigint IS NULL OR fence = $3)"
            " RETURNING last_seq,"
            " pg_notify($4, $5 || ' ' || id || ' ' || (last_seq - $1 + 1) || ' ' || last_seq)",
            n,
            job_id,
            fence,
            EVENTS_CHANNEL,
            self.instance,
        )
        if row is None:
            if fence is not None:
                raise LeaseLost(job_id)
            seq = 0
        else:
            seq = int(row["last_seq"]) - n
        now = self.now()
        out = [
            EventRow.model_construct(
                job_id=job_id, seq=seq + i + 1, type=e.type, payload=e.payload, created_at=now
            )
            for i, e in enumerate(events)
        ]
        await db.execute(
            "INSERT INTO job_events(job_id, seq, type, payload, created_at)"
            " SELECT $1, s, t, p, $2 FROM unnest($3::bigint[], $4::text[], $5::text[]) AS u(s, t, p)",
            job_id,
            now,
            [e.seq for e in out],
            [e.type for e in out],
            [json.dumps(e.payload) for e in out],
        )
        return out

    # ----- generation -------------------------------------------------------------------------

    async def commit_call(
        self, call: CallRow, items: Sequence[NewItem], events: Sequence[NewEvent]
    ) -> list[EventRow]:
        """Commit one finished LLM call: its items, its record and its events, all or nothing."""
        now = self.now()
        async with self.transaction() as db:
            # Fence first: a stale owner must not insert items before finding out it lost the job.
            await self._check_fence(db, call.job_id)
            await db.execute(
                "INSERT INTO llm_calls(job_id, call_key, stage, parent_id, status, prompt_hash, attempts,"
                " prompt_tokens, completion_tokens, latency_ms, error, created_at)"
                " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
                " ON CONFLICT (job_id, call_key) DO UPDATE SET stage = EXCLUDED.stage,"
                " parent_id = EXCLUDED.parent_id, status = EXCLUDED.status,"
                " prompt_hash = EXCLUDED.prompt_hash, attempts = EXCLUDED.attempts,"
                " prompt_tokens = EXCLUDED.prompt_tokens, completion_tokens = EXCLUDED.completion_tokens,"
                " latency_ms = EXCLUDED.latency_ms, error = EXCLUDED.error, created_at = EXCLUDED.created_at",
                *call.values(now),
            )
            await self._insert_items(db, call.job_id, call.call_key, items, now)
            return await self.append_in(db, call.job_id, events)

    async def _check_fence(self, db: asyncpg.Connection, job_id: str) -> None:
        fence = self._fences.get(job_id)
        if fence is None:
            return
        current = await db.fetchval("SELECT fence FROM jobs WHERE id = $1 FOR UPDATE", job_id)
        if current != fence:
            raise LeaseLost(job_id)

    async def _insert_items(
        self, db: asyncpg.Connection, job_id: str, call_key: str, items: Sequence[NewItem], now: float
    ) -> None:
        if not items:
            return
        await db.execute(
            "INSERT INTO items(id, job_id, parent_id, depends_on, kind, level, position, title, body,"
            " call_key, state, created_at, updated_at)"
            " SELECT i, $1, p, d::jsonb, k, l, o, t, b, $2, s, $3, $3"
            " FROM unnest($4::text[], $5::text[], $6::text[], $7::text[], $8::int[], $9::int[],"
            " $10::text[], $11::text[], $12::text[]) AS u(i, p, d, k, l, o, t, b, s)",
            job_id,
            call_key,
            now,
            [it.id for it in items],
            [it.parent_id for it in items],
            [json.dumps(list(it.depends_on)) for it in items],
            [it.kind for it in items],
            [it.level for it in items],
            [it.position for it in items],
            [it.title for it in items],
            [json.dumps(it.body) for it in items],
            [it.state for it in items],
        )

    async def stage_items(self, job_id: str, call_key: str, items: Sequence[NewItem]) -> None:
        """Insert items outside a call (derived test plans/suites, bulk staging)."""
        async with self.transaction() as db:
            await self._insert_items(db, job_id, call_key, items, self.now())

    async def apply_matches(
        self,
        job_id: str,
        matches: Sequence[ItemMatch],
        added: Sequence[NewItem],
        events: Sequence[NewEvent],
    ) -> list[EventRow]:
        """A re-run's matching, whole or not at all: the rows ``added`` (the previous job's vanished
        items), each item's match and what it takes over of its previous work item, and the events."""
        now = self.now()
        async with self.transaction() as db:
            await self._check_fence(db, job_id)
            await self._insert_items(db, job_id, MATCH_CALL_KEY, added, now)
            await db.executemany(
                "UPDATE items SET match_kind = $1, state = COALESCE($2, state),"
                " ado_id = COALESCE($3, ado_id), ado_url = COALESCE($4, ado_url),"
                " ado_rev = COALESCE($5, ado_rev), ado_extra = COALESCE($6, ado_extra),"
                " written = COALESCE($7, written), updated_at = $8 WHERE id = $9 AND job_id = $10",
                [m.values(job_id, now) for m in matches],
            )
            return await self.append_in(db, job_id, events)

    async def calls(self, job_id: str) -> list[CallRow]:
        async with self.reading() as db:
            rows = await db.fetch("SELECT * FROM llm_calls WHERE job_id = $1", job_id)
        return [CallRow.model_validate({name: r[name] for name in CallRow.model_fields}) for r in rows]

    async def items(self, job_id: str) -> list[ItemRow]:
        sql = f"SELECT {ITEM_COLS} FROM items WHERE job_id = $1 ORDER BY level, position, created_at"
        async with self.reading() as db:
            return [ItemRow.from_db(r) for r in await db.fetch(sql, job_id)]

    async def item_counts(self, job_id: str) -> dict[str, dict[str, int]]:
        """Counts per kind and state: ``{"story": {"uploaded": 3, "pending": 1}, ...}``."""
        sql = "SELECT kind, state, COUNT(*) AS n FROM items WHERE job_id = $1 GROUP BY kind, state"
        out: dict[str, dict[str, int]] = {}
        async with self.reading() as db:
            for r in await db.fetch(sql, job_id):
                out.setdefault(r["kind"], {})[r["state"]] = int(r["n"])
        return out

    async def integrity_check(self) -> str:
        async with self.reading() as db:
            return "ok" if await db.fetchval("SELECT 1") == 1 else "no answer"

    # ----- the jobs this instance holds (leases: ``outbox/pg/leases.py``) ----------------------

    def hold(self, job_id: str, fence: int) -> None:
        """From now on this instance's writes for the job are fenced with ``fence``."""
        self._fences[job_id] = fence

    def fence_of(self, job_id: str) -> int | None:
        """The fence this instance holds the job under (None: it does not hold it)."""
        return self._fences.get(job_id)

    def held_jobs(self) -> dict[str, int]:
        """Job id → fence, for every job this instance holds."""
        return dict(self._fences)

    def forget_job(self, job_id: str) -> int | None:
        """Stop fencing the job's writes (it was released or lost); returns the fence it had."""
        return self._fences.pop(job_id, None)

    @property
    def pool(self) -> asyncpg.Pool:
        """The connection pool, for the outbox queue operations (``outbox/pg/queue.py``)."""
        return self._pool


_ADMISSION_LOCK = 0x6261636B6C6F6764  # 'backlogd': the advisory lock job admission takes
_JOB_COLS = (
    "id, status, vision, options, metadata::text AS metadata, error, last_seq, created_at, updated_at,"
    " finished_at, vision_key"
)
ITEM_COLS = (
    "id, job_id, parent_id, depends_on::text AS depends_on, kind, level, position, title, body, call_key,"
    " state, attempts, lease_owner, lease_until, fence, next_attempt_at, reconcile, ado_id, ado_url,"
    " ado_rev, ado_extra, error, written, conflict, dirty, match_kind"
)
