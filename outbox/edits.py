"""Edits of a job's items by its user, each one transaction with the ``edit`` event that reports it.

The statements are written once, in SQLite's ``?`` style, and numbered for PostgreSQL. How an edit
moves an item's upload state:

    held / pending / retry_wait / dead / blocked  → unchanged (the next upload sends the new fields)
    uploaded                                       → pending: an update of its work item
    in_flight                                      → dirty: once the upload commits, pending again
    conflict ─keep ours──▶ pending (an update tested against their revision)
             ─keep theirs▶ uploaded (their values adopted, nothing written)

``events`` receives the rows as they are after the change, inside the transaction, and returns the
events to commit with it (published by the caller after the commit).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from typing import Any

from outbox.backend import StoreBackend
from outbox.pg.store import ITEM_COLS, PgStore
from outbox.records import CallRow, EventRow, ItemRow, NewEvent, NewItem
from outbox.store import Store

Events = Callable[[list[ItemRow]], list[NewEvent]]

_SUBTREE = """
WITH RECURSIVE d(id) AS (
    SELECT ?
    UNION
    SELECT i.id FROM items i, d WHERE i.job_id = ? AND (i.parent_id = d.id OR {depends})
)
SELECT id FROM d
"""
_DEPENDS_SQLITE = "EXISTS (SELECT 1 FROM json_each(i.depends_on) x WHERE x.value = d.id)"
_DEPENDS_PG = "i.depends_on ? d.id"

_EDIT = (
    "UPDATE items SET title = ?, body = ?, updated_at = ?,"
    " dirty = dirty OR state = 'in_flight',"
    " attempts = CASE WHEN state = 'uploaded' THEN 0 ELSE attempts END,"
    " next_attempt_at = CASE WHEN state = 'uploaded' THEN 0 ELSE next_attempt_at END,"
    " state = CASE WHEN state = 'uploaded' THEN 'pending' ELSE state END"
    " WHERE id = ? AND job_id = ?"
)
_KEEP_OURS = (
    "UPDATE items SET state = 'pending', ado_rev = ?, conflict = NULL, error = NULL, attempts = 0,"
    " next_attempt_at = 0, updated_at = ? WHERE id = ? AND job_id = ? AND state = 'conflict'"
)
_KEEP_THEIRS = (
    "UPDATE items SET state = 'uploaded', title = ?, body = ?, ado_rev = ?, written = ?, conflict = NULL,"
    " error = NULL, updated_at = ? WHERE id = ? AND job_id = ? AND state = 'conflict'"
)
_CONFLICT = (
    "UPDATE items SET state = 'conflict', conflict = ?, error = ?, updated_at = ?"
    " WHERE id = ? AND job_id = ? AND state IN ('uploaded', 'pending', 'retry_wait')"
)


def _numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, …``; the one other ``?`` in our SQL is PostgreSQL's
    jsonb "contains" operator in ``i.depends_on ? d.id``, left as it is."""
    count = iter(range(1, 1000))
    return re.sub(r"\?(?!\s*d\.id)", lambda _: f"${next(count)}", sql)


class _Tx:
    """One transaction on either backend, with the few statement shapes edits need."""

    def __init__(self, store: Store | PgStore, db: Any) -> None:
        self.store, self.db, self.pg = store, db, isinstance(store, PgStore)

    async def run(self, sql: str, *args: Any) -> None:
        if self.pg:
            await self.db.execute(_numbered(sql), *args)
        else:
            await self.db.execute(sql, args)

    async def rows(self, sql: str, *args: Any) -> list[Any]:
        if self.pg:
            return list(await self.db.fetch(_numbered(sql), *args))
        return list(await self.db.execute_fetchall(sql, args))

    async def items(self, ids: Sequence[str]) -> list[ItemRow]:
        if not ids:
            return []
        if self.pg:
            sql = f"SELECT {ITEM_COLS} FROM items WHERE id = ANY($1::text[]) ORDER BY level, position"
            return [ItemRow.from_db(r) for r in await self.db.fetch(sql, list(ids))]
        marks = ",".join("?" * len(ids))
        sql = f"SELECT * FROM items WHERE id IN ({marks}) ORDER BY level, position"
        return [ItemRow.from_db(r) for r in await self.db.execute_fetchall(sql, list(ids))]

    async def subtree(self, job_id: str, root: str) -> list[str]:
        sql = _SUBTREE.format(depends=_DEPENDS_PG if self.pg else _DEPENDS_SQLITE)
        return [r["id"] if self.pg else r[0] for r in await self.rows(sql, root, job_id)]

    async def delete(self, ids: Sequence[str]) -> None:
        for item_id in ids:
            await self.run("DELETE FROM items WHERE id = ?", item_id)

    async def insert(self, job_id: str, call_key: str, items: Sequence[NewItem]) -> None:
        await self.store._insert_items(self.db, job_id, call_key, items, self.store.now())

    async def commit_events(self, job_id: str, events: list[NewEvent]) -> list[EventRow]:
        return await self.store.append_in(self.db, job_id, events)


async def _in_tx(store: StoreBackend, job_id: str, work: Callable[[_Tx], Any]) -> list[EventRow]:
    assert isinstance(store, Store | PgStore)
    async with store.transaction() as db:
        tx = _Tx(store, db)
        events: list[NewEvent] = await work(tx)
        return await tx.commit_events(job_id, events)


async def edit(
    store: StoreBackend, job_id: str, item_id: str, title: str, body: dict[str, Any], events: Events
) -> list[EventRow]:
    """New fields for one item; an uploaded one becomes an update of its work item."""

    async def work(tx: _Tx) -> list[NewEvent]:
        await tx.run(_EDIT, title, json.dumps(body), store.now(), item_id, job_id)
        return events(await tx.items([item_id]))

    return await _in_tx(store, job_id, work)


async def conflict(
    store: StoreBackend, job_id: str, item_id: str, theirs: dict[str, Any], error: str, events: Events
) -> list[EventRow]:
    """Found changed in Azure DevOps before an edit of ours was saved: the user chooses."""

    async def work(tx: _Tx) -> list[NewEvent]:
        await tx.run(_CONFLICT, json.dumps(theirs), error, store.now(), item_id, job_id)
        return events(await tx.items([item_id]))

    return await _in_tx(store, job_id, work)


async def keep_ours(
    store: StoreBackend, job_id: str, item_id: str, their_rev: int, events: Events
) -> list[EventRow]:
    async def work(tx: _Tx) -> list[NewEvent]:
        await tx.run(_KEEP_OURS, their_rev, store.now(), item_id, job_id)
        return events(await tx.items([item_id]))

    return await _in_tx(store, job_id, work)


async def keep_theirs(
    store: StoreBackend,
    job_id: str,
    item_id: str,
    title: str,
    body: dict[str, Any],
    their_rev: int,
    written: dict[str, Any],
    events: Events,
) -> list[EventRow]:
    async def work(tx: _Tx) -> list[NewEvent]:
        args = (title, json.dumps(body), their_rev, json.dumps(written), store.now(), item_id, job_id)
        await tx.run(_KEEP_THEIRS, *args)
        return events(await tx.items([item_id]))

    return await _in_tx(store, job_id, work)


async def remove(
    store: StoreBackend, job_id: str, item_id: str, events: Callable[[list[ItemRow]], list[NewEvent]]
) -> list[EventRow]:
    """The item, its descendants and the QA items that depend on them go; ``events`` gets the removed
    rows (as they were)."""

    async def work(tx: _Tx) -> list[NewEvent]:
        gone = await tx.items(await tx.subtree(job_id, item_id))
        await tx.delete([r.id for r in gone])
        return events(gone)

    return await _in_tx(store, job_id, work)


async def jobs_with_open_items(store: StoreBackend) -> list[str]:
    """Jobs with items on their way (pending, in flight, waiting to retry), from the state index: after
    a restart, an edit of a finished job still has its update to send."""
    assert isinstance(store, Store | PgStore)
    sql = "SELECT DISTINCT job_id FROM items WHERE state IN ('pending', 'in_flight', 'retry_wait')"
    async with store.transaction() as db:
        rows = await _Tx(store, db).rows(sql)
    return sorted(str(r[0]) for r in rows)


async def release(store: StoreBackend, job_id: str, roots: Sequence[str]) -> int:
    """Review mode's upload of chosen epics: the held items under them (QA items too) become pending."""

    async def work(tx: _Tx) -> list[NewEvent]:
        ids: list[str] = []
        for root in roots:
            ids += await tx.subtree(job_id, root)
        for item_id in ids:
            await tx.run(
                "UPDATE items SET state = 'pending', updated_at = ? WHERE id = ? AND state = 'held'",
                store.now(),
                item_id,
            )
        released.append(len(ids))
        return []

    released: list[int] = []
    await _in_tx(store, job_id, work)
    return released[0]


async def add(
    store: StoreBackend, job_id: str, call_key: str, items: Sequence[NewItem], events: Events
) -> list[EventRow]:
    async def work(tx: _Tx) -> list[NewEvent]:
        await tx.insert(job_id, call_key, items)
        return events(await tx.items([i.id for i in items]))

    return await _in_tx(store, job_id, work)


_CALL = (
    "INSERT INTO llm_calls(job_id, call_key, stage, parent_id, status, prompt_hash, attempts, prompt_tokens,"
    " completion_tokens, latency_ms, error, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


async def replace_children(
    store: StoreBackend,
    job_id: str,
    parent_id: str,
    kinds: Sequence[str],
    calls: Sequence[CallRow],
    items: Sequence[NewItem],
    events: Callable[[list[ItemRow], list[ItemRow]], list[NewEvent]],
) -> list[EventRow]:
    """Regeneration: the parent's children of ``kinds`` (with their subtrees) go and the new ones come,
    with the calls that made them recorded (never run again), at once. The parent's own QA items stay.
    ``events`` gets the removed rows and the new ones."""

    async def work(tx: _Tx) -> list[NewEvent]:
        now = store.now()
        below: list[str] = []
        for child in await tx.rows(
            "SELECT id, kind FROM items WHERE parent_id = ? AND job_id = ?", parent_id, job_id
        ):
            if child["kind"] in kinds:
                below += await tx.subtree(job_id, child["id"])
        gone = await tx.items(below)
        await tx.delete(below)
        for call in calls:
            await tx.run(
                _CALL,
                *call.values(now),
            )
        await tx.insert(job_id, calls[0].call_key if calls else "regenerate", items)
        return events(gone, await tx.items([i.id for i in items]))

    return await _in_tx(store, job_id, work)
