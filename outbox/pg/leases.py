"""Job leases and shared pauses on PostgreSQL: what lets several instances share jobs and upstreams.

A job runs on the instance that holds its lease (``lease_owner``, ``lease_until``); every take-over bumps
the job's ``fence``, and the store fences the holder's writes with it (``PgStore.hold``), so an instance
that lost a job can never add to it. A pause (``Retry-After``) for an upstream identity is a row every
instance reads; ``NOTIFY`` tells them at once, the row covers anyone who missed it.
"""

from __future__ import annotations

from outbox.pg.store import JOBS_CHANNEL, PAUSES_CHANNEL, PgStore
from vocab import OPEN_JOB_STATES, TERMINAL_JOB_STATES

_OPEN = [s.value for s in OPEN_JOB_STATES]
_TERMINAL = sorted(s.value for s in TERMINAL_JOB_STATES)


async def claim_job(store: PgStore, job_id: str, owner: str, lease_seconds: float) -> int | None:
    """Take the job's lease if it is free, expired or already ours; returns the new fence (now held)."""
    now = store.now()
    async with store.transaction() as db:
        fence = await db.fetchval(
            "UPDATE jobs SET lease_owner = $2, lease_until = $3, fence = fence + 1"
            " WHERE id = $1 AND (lease_owner IS NULL OR lease_until < $4 OR lease_owner = $2)"
            " RETURNING fence",
            job_id,
            owner,
            now + lease_seconds,
            now,
        )
    if fence is None:
        return None
    store.hold(job_id, int(fence))
    return int(fence)


async def claimable_jobs(store: PgStore, limit: int, fresh_seconds: float = 0.0) -> list[str]:
    """Open jobs nobody holds (their instance died or gave them back, or they wait for a slot): oldest
    first, skipping locked rows. A job created less than ``fresh_seconds`` ago is left to the instance
    it was submitted to, which takes it at once when it has a slot."""
    now = store.now()
    async with store.transaction() as db:
        rows = await db.fetch(
            "SELECT id FROM jobs WHERE status = ANY($1::text[])"
            " AND ((lease_owner IS NULL AND created_at <= $4) OR lease_until < $2)"
            " ORDER BY created_at LIMIT $3 FOR UPDATE SKIP LOCKED",
            _OPEN,
            now,
            limit,
            now - fresh_seconds,
        )
    return [r["id"] for r in rows]


async def renew_jobs(store: PgStore, owner: str, lease_seconds: float) -> set[str]:
    """Extend the leases this instance still holds (same fence, job still open); returns those renewed."""
    held = store.held_jobs()
    if not held:
        return set()
    async with store.transaction() as db:
        rows = await db.fetch(
            "UPDATE jobs j SET lease_until = $1 FROM unnest($2::text[], $3::bigint[]) AS h(id, fence)"
            " WHERE j.id = h.id AND j.fence = h.fence AND j.lease_owner = $4"
            " AND NOT (j.status = ANY($5::text[])) RETURNING j.id",
            store.now() + lease_seconds,
            list(held),
            list(held.values()),
            owner,
            _TERMINAL,
        )
    return {r["id"] for r in rows}


async def release_job(store: PgStore, job_id: str, owner: str) -> None:
    """Give the lease back (finished, or shutting down): another instance may take the job at once."""
    fence = store.forget_job(job_id)
    if fence is None:
        return
    async with store.transaction() as db:
        await db.execute(
            "UPDATE jobs SET lease_owner = NULL, lease_until = NULL"
            " WHERE id = $1 AND fence = $2 AND lease_owner = $3",
            job_id,
            fence,
            owner,
        )
        await db.execute("SELECT pg_notify($1, $2)", JOBS_CHANNEL, job_id)


async def share_pause(store: PgStore, identity: str, until: float) -> None:
    """Record that ``identity`` asked everyone to wait until ``until`` (only ever extended) and say so."""
    async with store.transaction() as db:
        await db.execute(
            "INSERT INTO upstream_pauses(identity, until) VALUES ($1, $2)"
            " ON CONFLICT (identity)"
            " DO UPDATE SET until = GREATEST(upstream_pauses.until, EXCLUDED.until)",
            identity,
            until,
        )
        await db.execute("SELECT pg_notify($1, $2)", PAUSES_CHANNEL, f"{store.instance} {identity} {until}")


async def pauses(store: PgStore) -> dict[str, float]:
    """Every pause still in force: identity → until (epoch seconds)."""
    async with store.reading() as db:
        rows = await db.fetch("SELECT identity, until FROM upstream_pauses WHERE until > $1", store.now())
    return {r["identity"]: float(r["until"]) for r in rows}
