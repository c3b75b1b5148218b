"""The outbox state machine of ``outbox/queue.py`` in PostgreSQL's SQL, for several instances at once.

Claims lock the rows they take with ``FOR UPDATE SKIP LOCKED`` (two instances claiming together get
disjoint items and never wait for each other); everything else is the same statements under the same
fence, each change committed with the ``upload`` event that reports it.

Outcomes (uploaded, retry, dead) commit with ``synchronous_commit = off``: like SQLite's WAL with
``synchronous=NORMAL``, an acknowledged outcome survives our own crash but not a crash of the database
server in the next few hundred milliseconds. Nothing is duplicated by losing one: the item is left
``in_flight`` under an expired lease, so its next claim sets ``reconcile`` and looks the work item up
before creating it. Claims keep a durable commit: a lost claim would forget that an upload may have
started. Without this, every acknowledgement of one job waits for a WAL flush while holding the job's
row (its event seq), and a relay acknowledges one item per flush.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from outbox.pg.store import EVENTS_CHANNEL, ITEM_COLS, PgStore
from outbox.records import EventRow, ItemRow, NewEvent
from vocab import ItemState

_RETURNING = ", ".join(f"items.{c.strip()}" for c in ITEM_COLS.replace("::text AS depends_on", "").split(","))

_CLAIM = f"""
WITH c AS (
    SELECT i.id FROM items i
    WHERE i.job_id = ANY($1::text[])
      AND ((i.state IN ('pending', 'retry_wait') AND i.next_attempt_at <= $2)
           OR (i.state = 'in_flight' AND i.lease_until < $2))
      AND (i.parent_id IS NULL OR EXISTS (
            SELECT 1 FROM items p WHERE p.id = i.parent_id AND p.state = 'uploaded'))
      AND NOT EXISTS (
            SELECT 1 FROM jsonb_array_elements_text(i.depends_on) d(v) JOIN items q ON q.id = d.v
            WHERE q.state != 'uploaded')
      AND NOT (i.id = ANY($3::text[]))
    ORDER BY i.level, i.position
    LIMIT $4
    FOR UPDATE OF i SKIP LOCKED)
UPDATE items SET state = 'in_flight', lease_owner = $5, lease_until = $6, fence = items.fence + 1,
    attempts = items.attempts + 1, reconcile = items.reconcile OR items.state = 'in_flight', updated_at = $2
FROM c WHERE items.id = c.id
RETURNING {_RETURNING}
"""


_FAST_COMMIT = "SET LOCAL synchronous_commit = off"


def _event(item: ItemRow | dict[str, object], state: ItemState, **extra: object) -> NewEvent:
    get = item.get if isinstance(item, dict) else lambda k: getattr(item, k)
    payload = {"id": get("id"), "kind": get("kind"), "title": get("title"), "state": state, **extra}
    return NewEvent(type="upload", payload=payload)


async def claim(
    store: PgStore,
    job_ids: Sequence[str],
    owner: str,
    now: float,
    lease_seconds: float,
    limit: int,
    busy: Sequence[str] = (),
) -> list[ItemRow]:
    if not job_ids or limit <= 0:
        return []
    async with store.transaction() as db:
        rows = await db.fetch(_CLAIM, list(job_ids), now, list(busy), limit, owner, now + lease_seconds)
    return sorted((ItemRow.from_db(r) for r in rows), key=lambda r: (r.level, r.position))


# One statement, so one round trip and atomic on its own: the item's outcome, the job's next seq (its
# row lock orders the events; fenced while this instance holds the job) and the event, committed
# without waiting for the WAL flush (see above).
_ACK = """
WITH cfg AS (SELECT set_config('synchronous_commit', 'off', true)),
up AS (
    UPDATE items SET state = CASE WHEN dirty THEN 'pending' ELSE 'uploaded' END, dirty = FALSE,
        attempts = CASE WHEN dirty THEN 0 ELSE attempts END, ado_id = $1, ado_url = $2, ado_rev = $3,
        ado_extra = $4, written = COALESCE($13, written), conflict = NULL,
        error = NULL, reconcile = FALSE, lease_owner = NULL, lease_until = NULL, updated_at = $5
    WHERE id = $6 AND fence = $7 AND state = 'in_flight'
      AND EXISTS (SELECT 1 FROM jobs WHERE id = $8 AND ($9::bigint IS NULL OR fence = $9))
    RETURNING id, state),
seq AS (
    UPDATE jobs SET last_seq = last_seq + 1 WHERE id = $8 AND EXISTS (SELECT 1 FROM up)
    RETURNING last_seq, pg_notify($10, $11 || ' ' || id || ' ' || last_seq || ' ' || last_seq))
INSERT INTO job_events(job_id, seq, type, payload, created_at)
SELECT $8, seq.last_seq, 'upload', $12, $5 FROM seq, cfg
RETURNING seq, (SELECT state FROM up) AS state
"""


async def mark_uploaded(
    store: PgStore,
    item: ItemRow,
    ado_id: int,
    url: str,
    rev: int,
    extra: dict[str, int],
    written: dict[str, Any] | None = None,
) -> list[EventRow]:
    ev = uploaded_event(item, ado_id, url, rev)
    now = store.now()
    async with store.reading() as db:
        row = await db.fetchrow(
            _ACK,
            ado_id,
            url,
            rev,
            json.dumps(extra),
            now,
            item.id,
            item.fence,
            item.job_id,
            store.fence_of(item.job_id),
            EVENTS_CHANNEL,
            store.instance,
            json.dumps(ev.payload),
            json.dumps(written) if written is not None else None,
        )
    if row is None:
        return []  # fenced out: a newer owner holds this item (or another instance the job)
    done = [
        EventRow.model_construct(
            job_id=item.job_id, seq=int(row["seq"]), type=ev.type, payload=ev.payload, created_at=now
        )
    ]
    if row["state"] == ItemState.PENDING:  # edited while in flight: its update follows
        done += await store.append_events(
            item.job_id, [_event(item, ItemState.PENDING, rev=rev, update=True)]
        )
    return done


def uploaded_event(item: ItemRow, ado_id: int, url: str, rev: int) -> NewEvent:
    extra: dict[str, object] = {"adoId": ado_id, "url": url, "attempts": item.attempts, "rev": rev}
    if item.ado_rev is not None and item.ado_id is not None:
        extra["update"] = True  # not a new work item: progress counts it once
    return _event(item, ItemState.UPLOADED, **extra)


def conflict_error(theirs: dict[str, Any]) -> str:
    who = theirs.get("changed_by") or "someone"
    return f"changed in Azure DevOps by {who} (revision {theirs.get('rev')}); choose which version to keep"


async def mark_conflict(
    store: PgStore, item: ItemRow, theirs: dict[str, Any], fields: dict[str, Any]
) -> list[EventRow]:
    error = conflict_error(theirs)
    async with store.transaction() as db:
        done = await db.fetchval(
            "UPDATE items SET state = 'conflict', conflict = $1, error = $2, dirty = FALSE,"
            " lease_owner = NULL, lease_until = NULL, updated_at = $3"
            " WHERE id = $4 AND fence = $5 AND state = 'in_flight' RETURNING 1",
            json.dumps({"theirs": theirs, "fields": fields}),
            error,
            store.now(),
            item.id,
            item.fence,
        )
        if done is None:
            return []
        ev = _event(item, ItemState.CONFLICT, error=error, theirs=theirs)
        return await store.append_in(db, item.job_id, [ev])


async def mark_retry(
    store: PgStore,
    item: ItemRow,
    next_at: float,
    error: str,
    *,
    reconcile: bool,
    created_id: int | None = None,
) -> list[EventRow]:
    async with store.transaction() as db:
        await db.execute(_FAST_COMMIT)
        done = await db.fetchval(
            "UPDATE items SET state = 'retry_wait', next_attempt_at = $1, error = $2,"
            " reconcile = reconcile OR $3, ado_id = COALESCE($4, ado_id), lease_owner = NULL,"
            " lease_until = NULL, updated_at = $5 WHERE id = $6 AND fence = $7 AND state = 'in_flight'"
            " RETURNING 1",
            next_at,
            error[:2000],
            reconcile,
            created_id,
            store.now(),
            item.id,
            item.fence,
        )
        if done is None:
            return []
        ev = _event(item, ItemState.RETRY_WAIT, error=error[:500], attempts=item.attempts)
        return await store.append_in(db, item.job_id, [ev])


_DESCENDANTS = """
WITH RECURSIVE d(id) AS (
    SELECT $1::text
    UNION
    SELECT i.id FROM items i, d WHERE i.parent_id = d.id OR i.depends_on ? d.id
)
SELECT i.id, i.kind, i.title FROM items i JOIN d ON d.id = i.id
WHERE i.id != $1 AND i.state IN ('held', 'pending', 'retry_wait', 'in_flight')
"""

_BLOCK = (
    "UPDATE items SET state = 'blocked', error = $1, fence = fence + 1, lease_owner = NULL, updated_at = $2"
    " WHERE id = ANY($3::text[])"
)


async def mark_dead(
    store: PgStore, item: ItemRow, error: str, created_id: int | None = None
) -> list[EventRow]:
    now = store.now()
    async with store.transaction() as db:
        done = await db.fetchval(
            "UPDATE items SET state = 'dead', error = $1, ado_id = COALESCE($2, ado_id), lease_owner = NULL,"
            " lease_until = NULL, updated_at = $3 WHERE id = $4 AND fence = $5 AND state = 'in_flight'"
            " RETURNING 1",
            error[:2000],
            created_id,
            now,
            item.id,
            item.fence,
        )
        if done is None:
            return []
        blocked = [dict(r) for r in await db.fetch(_DESCENDANTS, item.id)]
        reason = f"blocked: {item.kind} '{item.title[:80]}' could not be uploaded"
        await db.execute(_BLOCK, reason, now, [b["id"] for b in blocked])
        events = [_event(item, ItemState.DEAD, error=error[:500], attempts=item.attempts)]
        events += [_event(b, ItemState.BLOCKED, error=reason) for b in blocked]
        return await store.append_in(db, item.job_id, events)


_ORPHANS = """
SELECT i.id, i.job_id, i.kind, i.title, p.kind AS p_kind, p.title AS p_title
FROM items i JOIN items p ON p.id = i.parent_id
WHERE i.job_id = ANY($1::text[]) AND i.state IN ('pending', 'retry_wait') AND p.state IN ('dead', 'blocked')
UNION ALL
SELECT i.id, i.job_id, i.kind, i.title, p.kind, p.title
FROM items i CROSS JOIN LATERAL jsonb_array_elements_text(i.depends_on) d(v) JOIN items p ON p.id = d.v
WHERE i.job_id = ANY($1::text[]) AND i.state IN ('pending', 'retry_wait') AND p.state IN ('dead', 'blocked')
"""


async def block_orphans(store: PgStore, job_ids: Sequence[str]) -> list[EventRow]:
    if not job_ids:
        return []
    async with store.reading() as db:
        failed = await db.fetchval(
            "SELECT 1 FROM items WHERE state IN ('dead', 'blocked') AND job_id = ANY($1::text[]) LIMIT 1",
            list(job_ids),
        )
    if failed is None:
        return []
    events: list[EventRow] = []
    now = store.now()
    async with store.transaction() as db:
        while True:  # one level per round, until a fixed point
            found = {r["id"]: dict(r) for r in await db.fetch(_ORPHANS, list(job_ids))}
            if not found:
                return events
            by_job: dict[str, list[NewEvent]] = {}
            for row in found.values():
                reason = f"blocked: {row['p_kind']} '{str(row['p_title'])[:80]}' could not be uploaded"
                await db.execute(_BLOCK, reason, now, [row["id"]])
                by_job.setdefault(row["job_id"], []).append(_event(row, ItemState.BLOCKED, error=reason))
            for job_id, new in by_job.items():
                events += await store.append_in(db, job_id, new)


def _count(status: str) -> int:
    """asyncpg's status tag, e.g. ``UPDATE 3``: the number of rows."""
    return int(status.rsplit(" ", 1)[-1])


async def release(store: PgStore, job_id: str) -> int:
    async with store.transaction() as db:
        status = await db.execute(
            "UPDATE items SET state = 'pending', updated_at = $1 WHERE job_id = $2 AND state = 'held'",
            store.now(),
            job_id,
        )
    return _count(status)


async def requeue(store: PgStore, job_id: str) -> list[EventRow]:
    async with store.transaction() as db:
        rows = [
            dict(r)
            for r in await db.fetch(
                "SELECT id, kind, title FROM items WHERE job_id = $1 AND state IN ('dead', 'blocked')"
                " ORDER BY level, position",
                job_id,
            )
        ]
        await db.execute(
            "UPDATE items SET state = 'pending', attempts = 0, next_attempt_at = 0, fence = fence + 1,"
            " reconcile = CASE WHEN state = 'dead' THEN TRUE ELSE reconcile END, updated_at = $1"
            " WHERE job_id = $2 AND state IN ('dead', 'blocked')",
            store.now(),
            job_id,
        )
        return await store.append_in(db, job_id, [_event(r, ItemState.PENDING) for r in rows])


async def release_leases(store: PgStore, owner: str) -> int:
    async with store.transaction() as db:
        status = await db.execute(
            "UPDATE items SET state = 'pending', lease_owner = NULL, lease_until = NULL, reconcile = TRUE,"
            " fence = fence + 1, updated_at = $1 WHERE state = 'in_flight' AND lease_owner = $2",
            store.now(),
            owner,
        )
    return _count(status)


async def open_count(store: PgStore, job_id: str) -> int:
    async with store.reading() as db:
        n = await db.fetchval(
            "SELECT COUNT(*) FROM items"
            " WHERE job_id = $1 AND state IN ('pending', 'in_flight', 'retry_wait')",
            job_id,
        )
    return int(n or 0)


async def resolved(store: PgStore, ids: Sequence[str]) -> dict[str, ItemRow]:
    if not ids:
        return {}
    async with store.reading() as db:
        rows = await db.fetch(f"SELECT {ITEM_COLS} FROM items WHERE id = ANY($1::text[])", list(ids))
    return {r["id"]: ItemRow.from_db(r) for r in rows}
