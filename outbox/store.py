"""The SQLite store (aiosqlite): jobs, their event log, LLM call records and outbox items.

One writer connection, serialised by an asyncio lock so each transaction (``BEGIN IMMEDIATE``) is
whole; one reader connection for queries (WAL lets it read while the writer writes). Every method
that changes state commits before it returns; events get their per-job ``seq`` inside the same
transaction as the change they describe.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from outbox.errors import VisionTaken
from outbox.migrate import migrate_sqlite
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


class Store:
    """Owns the database file. Use ``async with Store.open(path) as store``."""

    def __init__(self, writer: aiosqlite.Connection, reader: aiosqlite.Connection, clock: Clock) -> None:
        self._w = writer
        self._r = reader
        self._clock = clock
        self._lock = asyncio.Lock()
        self.path = ""

    @classmethod
    @asynccontextmanager
    async def open(cls, path: str | Path, *, clock: Clock = time.time) -> AsyncIterator[Store]:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        writer = await aiosqlite.connect(str(path), isolation_level=None)
        try:
            writer.row_factory = aiosqlite.Row
            await writer.execute("PRAGMA journal_mode=WAL")
            await writer.execute("PRAGMA synchronous=NORMAL")
            await writer.execute("PRAGMA busy_timeout=5000")
            await migrate_sqlite(writer)  # schema.sql, then the versioned files, under the write lock
            reader = await aiosqlite.connect(str(path), isolation_level=None)
        except BaseException:
            await writer.close()
            raise
        try:
            reader.row_factory = aiosqlite.Row
            await reader.execute("PRAGMA busy_timeout=5000")
            store = cls(writer, reader, clock)
            store.path = str(path)
            yield store
        finally:
            await reader.close()
            await writer.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One write transaction on the writer connection; rolled back on any error.

        Cancellation (a job cancelled, a shutdown) can land on any await in here, but the statement
        being awaited still runs on the connection's thread. So BEGIN, COMMIT and ROLLBACK are
        shielded, and a BEGIN whose caller was cancelled is rolled back before the lock is released:
        otherwise the next transaction would find one already open.
        """
        async with self._lock:
            begin = asyncio.ensure_future(self._run("BEGIN IMMEDIATE"))
            try:
                await asyncio.shield(begin)
            except asyncio.CancelledError:
                await asyncio.shield(self._after(begin, "ROLLBACK"))
                raise
            try:
                yield self._w
            except BaseException:
                await asyncio.shield(self._run("ROLLBACK"))
                raise
            await asyncio.shield(self._run("COMMIT"))

    async def _run(self, sql: str) -> None:
        await self._w.execute(sql)

    async def _after(self, first: asyncio.Future[None], sql: str) -> None:
        await first
        await self._run(sql)

    async def _read(self, sql: str, params: Sequence[Any] | Mapping[str, Any]) -> list[sqlite3.Row]:
        """One read as one call on the reader's thread: the statement runs to its end and is reset there.
        A cursor left open across an await would keep its read snapshot for every read the loop slips
        in meanwhile; under load those overlap without end and a job just committed stays unseen."""
        return list(await self._r.execute_fetchall(sql, params))

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
        """Insert a queued job; None (nothing written) when ``max_queued`` jobs already wait. With
        ``copy_guard`` (the statuses that hold no backlog) VisionTaken when a job of the same vision key in
        any other status exists. The checks and the insert share one ``BEGIN IMMEDIATE`` transaction:
        concurrent admissions are serialised."""
        now = self.now()
        async with self.transaction() as db:
            if max_queued is not None:
                async with db.execute("SELECT COUNT(*) FROM jobs WHERE status = 'queued'") as cur:
                    row = await cur.fetchone()
                if row is not None and int(row[0]) >= max_queued:
                    return None
            if copy_guard is not None and vision_key is not None:
                await self._refuse_copy(db, vision_key, copy_guard)
            await db.execute(
                "INSERT INTO jobs(id, status, vision, options, metadata, created_at, updated_at, vision_key)"
                " VALUES (?, 'queued', ?, ?, ?, ?, ?, ?)",
                (job_id, *job_columns(vision, options, metadata), now, now, vision_key),
            )
            return await self.append_in(
                db, job_id, [NewEvent(type="stage", payload={"status": JobStatus.QUEUED})]
            )

    async def _refuse_copy(
        self, db: aiosqlite.Connection, vision_key: str, skip: Sequence[JobStatus]
    ) -> None:
        marks = ",".join("?" * len(skip)) or "''"
        sql = f"SELECT id FROM jobs WHERE vision_key = ? AND status NOT IN ({marks}) ORDER BY created_at DESC"
        async with db.execute(sql + " LIMIT 1", (vision_key, *[str(s) for s in skip])) as cur:
            row = await cur.fetchone()
        if row is not None:
            raise VisionTaken(str(row[0]))

    async def get_job(self, job_id: str) -> JobRow | None:
        rows = await self._read("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return JobRow.from_db(rows[0]) if rows else None

    async def list_jobs(self, limit: int = 100) -> list[JobRow]:
        sql = "SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?"
        return [JobRow.from_db(r) for r in await self._read(sql, (limit,))]

    async def latest_with_key(self, vision_key: str, skip: Iterable[JobStatus]) -> JobRow | None:
        """The newest job of this vision and target not in ``skip`` (index jobs_vision_key)."""
        skipped = [str(s) for s in skip]
        marks = ",".join("?" * len(skipped)) or "''"
        sql = (
            f"SELECT * FROM jobs WHERE vision_key = ? AND status NOT IN ({marks})"
            " ORDER BY created_at DESC LIMIT 1"
        )
        rows = await self._read(sql, (vision_key, *skipped))
        return JobRow.from_db(rows[0]) if rows else None

    async def jobs_in(self, statuses: Iterable[JobStatus]) -> list[JobRow]:
        wanted = list(statuses)
        marks = ",".join("?" * len(wanted))
        sql = f"SELECT * FROM jobs WHERE status IN ({marks}) ORDER BY created_at"
        return [JobRow.from_db(r) for r in await self._read(sql, wanted)]

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
                "UPDATE jobs SET status = ?, error = ?, updated_at = ?, finished_at = ?,"
                " metadata = CASE WHEN ? IS NULL THEN metadata ELSE json_patch(metadata, ?) END"
                " WHERE id = ?",
                (status, error, now, finished, _opt_json(metadata), _opt_json(metadata), job_id),
            )
            return await self.append_in(db, job_id, events)

    async def merge_metadata(self, job_id: str, metadata: dict[str, Any]) -> None:
        async with self.transaction() as db:
            await db.execute(
                "UPDATE jobs SET metadata = json_patch(metadata, ?), updated_at = ? WHERE id = ?",
                (json.dumps(metadata), self.now(), job_id),
            )

    # ----- events -----------------------------------------------------------------------------

    async def append_events(self, job_id: str, events: Sequence[NewEvent]) -> list[EventRow]:
        async with self.transaction() as db:
            return await self.append_in(db, job_id, events)

    async def events_after(self, job_id: str, after_seq: int, limit: int = 10_000) -> list[EventRow]:
        sql = "SELECT * FROM job_events WHERE job_id = ? AND seq > ? ORDER BY seq LIMIT ?"
        rows = await self._read(sql, (job_id, after_seq, limit))
        return [
            EventRow(
                job_id=r["job_id"],
                seq=r["seq"],
                type=r["type"],
                payload=json.loads(r["payload"]),
                created_at=r["created_at"],
            )
            for r in rows
        ]

    async def append_in(
        self, db: aiosqlite.Connection, job_id: str, events: Sequence[NewEvent]
    ) -> list[EventRow]:
        if not events:
            return []
        # One round trip to the writer thread reserves the seqs (the same transaction inserts them).
        sql = "UPDATE jobs SET last_seq = last_seq + ? WHERE id = ? RETURNING last_seq"
        rows = list(await db.execute_fetchall(sql, (len(events), job_id)))
        seq = int(rows[0][0]) - len(events) if rows else 0
        now = self.now()
        # Built from already-typed values: skip re-validation (it was a third of a commit's CPU time).
        out = [
            EventRow.model_construct(
                job_id=job_id, seq=seq + i + 1, type=e.type, payload=e.payload, created_at=now
            )
            for i, e in enumerate(events)
        ]
        await db.executemany(
            "INSERT INTO job_events(job_id, seq, type, payload, created_at) VALUES (?, ?, ?, ?, ?)",
            [(e.job_id, e.seq, e.type, json.dumps(e.payload), e.created_at) for e in out],
        )
        return out

    # ----- generation -------------------------------------------------------------------------

    async def commit_call(
        self, call: CallRow, items: Sequence[NewItem], events: Sequence[NewEvent]
    ) -> list[EventRow]:
        """Commit one finished LLM call: its items, its record and its events, all or nothing."""
        now = self.now()
        async with self.transaction() as db:
            await db.execute(
                "INSERT OR REPLACE INTO llm_calls(job_id, call_key, stage, parent_id, status, prompt_hash,"
                " attempts, prompt_tokens, completion_tokens, latency_ms, error, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                call.values(now),
            )
            await self._insert_items(db, call.job_id, call.call_key, items, now)
            return await self.append_in(db, call.job_id, events)

    async def _insert_items(
        self,
        db: aiosqlite.Connection,
        job_id: str,
        call_key: str,
        items: Sequence[NewItem],
        now: float,
    ) -> None:
        await db.executemany(
            "INSERT INTO items(id, job_id, parent_id, depends_on, kind, level, position, title, body,"
            " call_key, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    it.id,
                    job_id,
                    it.parent_id,
                    json.dumps(list(it.depends_on)),
                    it.kind,
                    it.level,
                    it.position,
                    it.title,
                    json.dumps(it.body),
                    call_key,
                    it.state,
                    now,
                    now,
                )
                for it in items
            ],
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
            await self._insert_items(db, job_id, MATCH_CALL_KEY, added, now)
            await db.executemany(
                "UPDATE items SET match_kind = ?, state = COALESCE(?, state), ado_id = COALESCE(?, ado_id),"
                " ado_url = COALESCE(?, ado_url), ado_rev = COALESCE(?, ado_rev),"
                " ado_extra = COALESCE(?, ado_extra), written = COALESCE(?, written), updated_at = ?"
                " WHERE id = ? AND job_id = ?",
                [m.values(job_id, now) for m in matches],
            )
            return await self.append_in(db, job_id, events)

    async def calls(self, job_id: str) -> list[CallRow]:
        rows = await self._read("SELECT * FROM llm_calls WHERE job_id = ?", (job_id,))
        return [CallRow.model_validate({name: r[name] for name in CallRow.model_fields}) for r in rows]

    async def items(self, job_id: str) -> list[ItemRow]:
        sql = "SELECT * FROM items WHERE job_id = ? ORDER BY level, position, created_at"
        return [ItemRow.from_db(r) for r in await self._read(sql, (job_id,))]

    async def item_counts(self, job_id: str) -> dict[str, dict[str, int]]:
        """Counts per kind and state: ``{"story": {"uploaded": 3, "pending": 1}, ...}``."""
        sql = "SELECT kind, state, COUNT(*) FROM items WHERE job_id = ? GROUP BY kind, state"
        out: dict[str, dict[str, int]] = {}
        for kind, state, n in await self._read(sql, (job_id,)):
            out.setdefault(kind, {})[state] = n
        return out

    async def integrity_check(self) -> str:
        rows = await self._read("PRAGMA integrity_check", ())
        return str(rows[0][0]) if rows else "no answer"

    @property
    def writer(self) -> aiosqlite.Connection:
        """The writer connection, for outbox queue operations (used only inside ``transaction``)."""
        return self._w

    @property
    def reader(self) -> aiosqlite.Connection:
        return self._r


def _opt_json(value: dict[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(value)
