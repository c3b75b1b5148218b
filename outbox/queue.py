"""The outbox state machine in SQL: claim with a lease, then record the outcome under a fence.

    held ──release──▶ pending ──claim──▶ in_flight ──▶ uploaded
                         ▲                  │  ├──▶ retry_wait ──(next_attempt_at)──▶ claimable
                         └──requeue── dead ◀┘  └──▶ dead ──▶ descendants become blocked

A claim takes only items whose parent and prerequisites are uploaded (parent-first), bumps the
item's ``fence`` and leases it to one owner. Every outcome is written ``WHERE fence = ?``: an owner
whose lease expired and was reclaimed can never overwrite the newer result. A reclaimed lease, and
any ambiguous failure, sets ``reconcile`` so the next attempt looks the item up before creating it.
Each change commits together with the ``upload`` event that reports it.

These are SQLite's statements; on PostgreSQL each operation runs ``outbox/pg/queue.py``'s instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from outbox.backend import StoreBackend
from outbox.pg import queue as pg
from outbox.pg.store import PgStore
from outbox.records import EventRow, ItemRow, NewEvent
from outbox.store import Store
from vocab import ItemState

_CLAIM = """
UPDATE items SET state = 'in_flight', lease_owner = :owner, lease_until = :until, fence = fence + 1,
    attempts = attempts + 1, reconcile = reconcile OR state = 'in_flight', updated_at = :now
WHERE id IN (
    SELECT i.id FROM items i
    WHERE i.job_id IN ({jobs})
      AND ((i.state IN ('pending', 'retry_wait') AND i.next_attempt_at <= :now)
           OR (i.state = 'in_flight' AND i.lease_until < :now))
      AND (i.parent_id IS NULL OR EXISTS (
            SELECT 1 FROM items p WHERE p.id = i.parent_id AND p.state = 'uploaded'))
      AND NOT EXISTS (
            SELECT 1 FROM json_each(i.depends_on) d JOIN items q ON q.id = d.value
            WHERE q.state != 'uploaded')
      AND i.id NOT IN (SELECT value FROM json_each(:busy))
    ORDER BY i.level, i.position  -- the order of the items_job index: the scan stops at LIMIT
    LIMIT :limit)
RETURNING *
"""


def _event(item: ItemRow | dict[str, Any], state: ItemState, **extra: Any) -> NewEvent:
    get = item.get if isinstance(item, dict) else lambda k: getattr(item, k)
    payload = {"id": get("id"), "kind": get("kind"), "title": get("title"), "state": state, **extra}
    return NewEvent(type="upload", payload=payload)


async def claim(
    store: StoreBackend,
    job_ids: Sequence[str],
    owner: str,
    now: float,
    lease_seconds: float,
    limit: int,
    busy: Sequence[str] = (),
) -> list[ItemRow]:
    """Lease up to ``limit`` claimable items, parents first. One statement: the SET sees the old state,
    so an item whose expired lease is taken over gets ``reconcile`` (its create may have happened).
    ``busy``: items the caller is still working on; never re-leased to it even if their lease ran out."""
    if isinstance(store, PgStore):
        return await pg.claim(store, job_ids, owner, now, lease_seconds, limit, busy)
    assert isinstance(store, Store)
    if not job_ids or limit <= 0:
        return []
    marks = ",".join(f":j{i}" for i in range(len(job_ids)))
    params: dict[str, Any] = {f"j{i}": j for i, j in enumerate(job_ids)}
    params.update(now=now, limit=limit, owner=owner, until=now + lease_seconds, busy=json.dumps(list(busy)))
    async with store.transaction() as db:
        rows = await db.execute_fetchall(_CLAIM.format(jobs=marks), params)
    return sorted((ItemRow.from_db(r) for r in rows), key=lambda r: (r.level, r.position))


async def mark_uploaded(
    store: StoreBackend,
    item: ItemRow,
    ado_id: int,
    url: str,
    rev: int,
    extra: dict[str, int],
    written: dict[str, Any] | None = None,
) -> list[EventRow]:
    """Uploaded at ``rev``; an item edited while it was in flight goes straight back to pending (its
    edit follows as an update). The event says ``update`` when the work item existed already."""
    if isinstance(store, PgStore):
        return await pg.mark_uploaded(store, item, ado_id, url, rev, extra, written)
    assert isinstance(store, Store)
    async with store.transaction() as db:
        rows = list(
            await db.execute_fetchall(
                "UPDATE items SET state = CASE WHEN dirty THEN 'pending' ELSE 'uploaded' END, dirty = 0,"
                " attempts = CASE WHEN dirty THEN 0 ELSE attempts END, ado_id = ?, ado_url = ?,"
                " ado_rev = ?, ado_extra = ?, written = COALESCE(?, written), conflict = NULL,"
                " error = NULL, reconcile = 0, lease_owner = NULL, lease_until = NULL, updated_at = ?"
                " WHERE id = ? AND fence = ? AND state = 'in_flight' RETURNING state",
                (ado_id, url, rev, json.dumps(extra), _opt(written), store.now(), item.id, item.fence),
            )
        )
        if not rows:
            return []  # fenced out: a newer owner holds this item
        events = [uploaded_event(item, ado_id, url, rev)]
        if rows[0][0] == ItemState.PENDING:
            events.append(_event(item, ItemState.PENDING, rev=rev, update=True))
        return await store.append_in(db, item.job_id, events)


def uploaded_event(item: ItemRow, ado_id: int, url: str, rev: int) -> NewEvent:
    extra: dict[str, Any] = {"adoId": ado_id, "url": url, "attempts": item.attempts, "rev": rev}
    if item.ado_rev is not None and item.ado_id is not None:
        extra["update"] = True  # not a new work item: progress counts it once
    return _event(item, ItemState.UPLOADED, **extra)


def conflict_error(theirs: dict[str, Any]) -> str:
    who = theirs.get("changed_by") or "someone"
    return f"changed in Azure DevOps by {who} (revision {theirs.get('rev')}); choose which version to keep"


def _opt(value: dict[str, Any] | None) -> str | None:
    return json.dumps(value) if value is not None else None


async def mark_conflict(
    store: StoreBackend, item: ItemRow, theirs: dict[str, Any], fields: dict[str, Any]
) -> list[EventRow]:
    """An update found the work item changed in Azure DevOps: the row waits for the user's choice with
    their values kept; nothing was written."""
    if isinstance(store, PgStore):
        return await pg.mark_conflict(store, item, theirs, fields)
    assert isinstance(store, Store)
    error = conflict_error(theirs)
    async with store.transaction() as db:
        cur = await db.execute(
            "UPDATE items SET state = 'conflict', conflict = ?, error = ?, dirty = 0, lease_owner = NULL,"
            " lease_until = NULL, updated_at = ? WHERE id = ? AND fence = ? AND state = 'in_flight'",
            (json.dumps({"theirs": theirs, "fields": fields}), error, store.now(), item.id, item.fence),
        )
        if cur.rowcount == 0:
            return []
        ev = _event(item, ItemState.CONFLICT, error=error, theirs=theirs)
        return await store.append_in(db, item.job_id, [ev])


async def mark_retry(
    store: StoreBackend,
    item: ItemRow,
    next_at: float,
    error: str,
    *,
    reconcile: bool,
    created_id: int | None = None,
) -> list[EventRow]:
    if isinstance(store, PgStore):
        return await pg.mark_retry(store, item, next_at, error, reconcile=reconcile, created_id=created_id)
    assert isinstance(store, Store)
    async with store.transaction() as db:
        cur = await db.execute(
            "UPDATE items SET state = 'retry_wait', next_attempt_at = ?, error = ?,"
            " reconcile = reconcile OR ?, ado_id = COALESCE(?, ado_id), lease_owner = NULL,"
            " lease_until = NULL, updated_at = ?"
            " WHERE id = ? AND fence = ? AND state = 'in_flight'",
            (next_at, error[:2000], int(reconcile), created_id, store.now(), item.id, item.fence),
        )
        if cur.rowcount == 0:
            return []
        ev = _event(item, ItemState.RETRY_WAIT, error=error[:500], attempts=item.attempts)
        return await store.append_in(db, item.job_id, [ev])


_DESCENDANTS = """
WITH RECURSIVE d(id) AS (
    SELECT :root
    UNION
    SELECT i.id FROM items i, d
    WHERE i.parent_id = d.id OR EXISTS (SELECT 1 FROM json_each(i.depends_on) x WHERE x.value = d.id)
)
SELECT i.id, i.kind, i.title FROM items i JOIN d ON d.id = i.id
WHERE i.id != :root AND i.state IN ('held', 'pending', 'retry_wait', 'in_flight')
"""


async def mark_dead(
    store: StoreBackend, item: ItemRow, error: str, created_id: int | None = None
) -> list[EventRow]:
    """Dead with its error kept; every not-yet-uploaded descendant becomes blocked (never skipped)."""
    if isinstance(store, PgStore):
        return await pg.mark_dead(store, item, error, created_id)
    assert isinstance(store, Store)
    now = store.now()
    async with store.transaction() as db:
        cur = await db.execute(
            "UPDATE items SET state = 'dead', error = ?, ado_id = COALESCE(?, ado_id), lease_owner = NULL,"
            " lease_until = NULL, updated_at = ? WHERE id = ? AND fence = ? AND state = 'in_flight'",
            (error[:2000], created_id, now, item.id, item.fence),
        )
        if cur.rowcount == 0:
            return []
        async with db.execute(_DESCENDANTS, {"root": item.id}) as c:
            blocked = [dict(r) for r in await c.fetchall()]
        reason = f"blocked: {item.kind} '{item.title[:80]}' could not be uploaded"
        await db.executemany(
            "UPDATE items SET state = 'blocked', error = ?, fence = fence + 1, lease_owner = NULL,"
            " updated_at = ? WHERE id = ?",
            [(reason, now, b["id"]) for b in blocked],
        )
        events = [_event(item, ItemState.DEAD, error=error[:500], attempts=item.attempts)]
        events += [_event(b, ItemState.BLOCKED, error=reason) for b in blocked]
        return await store.append_in(db, item.job_id, events)


_ORPHANS = """
SELECT i.id, i.job_id, i.kind, i.title, p.kind AS p_kind, p.title AS p_title
FROM items i JOIN items p ON p.id = i.parent_id
WHERE i.job_id IN ({jobs}) AND i.state IN ('pending', 'retry_wait') AND p.state IN ('dead', 'blocked')
UNION ALL
SELECT i.id, i.job_id, i.kind, i.title, p.kind, p.title
FROM items i, json_each(i.depends_on) d JOIN items p ON p.id = d.value
WHERE i.job_id IN ({jobs}) AND i.state IN ('pending', 'retry_wait') AND p.state IN ('dead', 'blocked')
"""


async def block_orphans(store: StoreBackend, job_ids: Sequence[str]) -> list[EventRow]:
    """Items staged after a parent or prerequisite died (streaming) become blocked, never pending forever."""
    if isinstance(store, PgStore):
        return await pg.block_orphans(store, job_ids)
    assert isinstance(store, Store)
    if not job_ids:
        return []
    marks = ",".join("?" * len(job_ids))
    params = [*job_ids, *job_ids]
    failed = f"SELECT 1 FROM items WHERE state IN ('dead', 'blocked') AND job_id IN ({marks}) LIMIT 1"
    if not await store.reader.execute_fetchall(failed, list(job_ids)):
        return []  # the common case, answered from the state index: nothing failed
    events: list[EventRow] = []
    now = store.now()
    async with store.transaction() as db:
        while True:  # one level per round, until a fixed point
            found = {r["id"]: dict(r) for r in await db.execute_fetchall(_ORPHANS.format(jobs=marks), params)}
            if not found:
                return events
            by_job: dict[str, list[NewEvent]] = {}
            for row in found.values():
                reason = f"blocked: {row['p_kind']} '{str(row['p_title'])[:80]}' could not be uploaded"
                await db.execute(
                    "UPDATE items SET state = 'blocked', error = ?, fence = fence + 1, lease_owner = NULL,"
                    " updated_at = ? WHERE id = ?",
                    (reason, now, row["id"]),
                )
                by_job.setdefault(row["job_id"], []).append(_event(row, ItemState.BLOCKED, error=reason))
            for job_id, new in by_job.items():
                events += await store.append_in(db, job_id, new)


async def release(store: StoreBackend, job_id: str) -> int:
    """Held items (after generation, manual mode) become claimable."""
    if isinstance(store, PgStore):
        return await pg.release(store, job_id)
    assert isinstance(store, Store)
    async with store.transaction() as db:
        cur = await db.execute(
            "UPDATE items SET state = 'pending', updated_at = ? WHERE job_id = ? AND state = 'held'",
            (store.now(), job_id),
        )
        return cur.rowcount


async def requeue(store: StoreBackend, job_id: str) -> list[EventRow]:
    """Dead and blocked items go back to pending; a dead item keeps ``reconcile`` to avoid duplicates."""
    if isinstance(store, PgStore):
        return await pg.requeue(store, job_id)
    assert isinstance(store, Store)
    async with store.transaction() as db:
        async with db.execute(
            "SELECT id, kind, title FROM items WHERE job_id = ? AND state IN ('dead', 'blocked')", (job_id,)
        ) as cur:
            rows = [dict(r) for r in await cur.fetchall()]
        await db.execute(
            "UPDATE items SET state = 'pending', attempts = 0, next_attempt_at = 0, fence = fence + 1,"
            " reconcile = CASE WHEN state = 'dead' THEN 1 ELSE reconcile END, updated_at = ?"
            " WHERE job_id = ? AND state IN ('dead', 'blocked')",
            (store.now(), job_id),
        )
        return await store.append_in(db, job_id, [_event(r, ItemState.PENDING) for r in rows])


async def release_leases(store: StoreBackend, owner: str) -> int:
    """On shutdown: give back this owner's leases; the next attempt reconciles before creating."""
    if isinstance(store, PgStore):
        return await pg.release_leases(store, owner)
    assert isinstance(store, Store)
    async with store.transaction() as db:
        cur = await db.execute(
            "UPDATE items SET state = 'pending', lease_owner = NULL, lease_until = NULL, reconcile = 1,"
            " fence = fence + 1, updated_at = ? WHERE state = 'in_flight' AND lease_owner = ?",
            (store.now(), owner),
        )
        return cur.rowcount


async def open_count(store: StoreBackend, job_id: str) -> int:
    """Items still on their way (not uploaded, dead, blocked or held)."""
    if isinstance(store, PgStore):
        return await pg.open_count(store, job_id)
    assert isinstance(store, Store)
    sql = "SELECT COUNT(*) FROM items WHERE job_id = ? AND state IN ('pending', 'in_flight', 'retry_wait')"
    rows = list(await store.reader.execute_fetchall(sql, (job_id,)))
    return int(rows[0][0]) if rows else 0


async def resolved(store: StoreBackend, ids: Sequence[str]) -> dict[str, ItemRow]:
    """The rows of an item's parent and prerequisites, to build its upload request."""
    if isinstance(store, PgStore):
        return await pg.resolved(store, ids)
    assert isinstance(store, Store)
    if not ids:
        return {}
    marks = ",".join("?" * len(ids))
    rows = await store.reader.execute_fetchall(f"SELECT * FROM items WHERE id IN ({marks})", list(ids))
    return {r["id"]: ItemRow.from_db(r) for r in rows}
