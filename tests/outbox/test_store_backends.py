"""The store's behaviour on both backends: jobs, the event log, LLM call records, items, migrations."""

from __future__ import annotations

import asyncio
import sqlite3
from importlib import resources
from pathlib import Path

import asyncpg

from outbox.backend import LeaseLost, StoreBackend
from outbox.migrate import migrate_postgresql, migrations
from outbox.pg import leases
from outbox.pg.store import PgStore
from outbox.records import CallRow, NewEvent, NewItem
from outbox.store import Store
from tests.jobrows import OPTIONS, VISION
from tests.outbox.test_upload_support import FakeClock
from tests.pgdb import StoreOpener
from vocab.options import JobOptions
from vocab.vision import Sentence, Vision

JOB = "job-s"


def _call(key: str, status: str = "done") -> CallRow:
    return CallRow(
        job_id=JOB, call_key=key, stage="epics", parent_id=None, status=status, prompt_hash="h", attempts=1
    )


def _item(n: int, parent: str | None = None) -> NewItem:
    return NewItem(
        id=f"i{n}", parent_id=parent, kind="epic", level=0, position=n, title=f"T{n}", body={"n": n}
    )


async def test_a_job_is_created_queued_with_its_first_event(store_opener: StoreOpener) -> None:
    """A new job reads back as queued with its vision and options, and its log starts at seq 1."""
    async with store_opener(clock=FakeClock()) as store:
        events = await store.create_job(JOB, VISION, OPTIONS, {"tier": "s"})
        job = await store.get_job(JOB)
        assert job is not None and job.status == "queued" and job.vision == VISION
        assert job.options == OPTIONS and job.metadata == {"tier": "s"}
        assert [(e.seq, e.type) for e in events] == [(1, "stage")]
        assert [j.id for j in await store.jobs_in(["queued"])] == [JOB]
        assert [j.id for j in await store.list_jobs()] == [JOB]


async def test_status_changes_merge_metadata_and_finish_terminal_jobs(store_opener: StoreOpener) -> None:
    """A terminal status stamps finished_at; metadata is merged key by key, never replaced."""
    async with store_opener(clock=FakeClock()) as store:
        await store.create_job(JOB, VISION, OPTIONS, {"a": 1})
        await store.set_job_status(JOB, "running", metadata={"b": 2})
        await store.merge_metadata(JOB, {"c": 3})
        running = await store.get_job(JOB)
        assert running is not None and running.finished_at is None
        await store.set_job_status(JOB, "failed", error="boom", events=[NewEvent(type="final", payload={})])
        job = await store.get_job(JOB)
        assert job is not None and job.status == "failed" and job.error == "boom"
        assert job.metadata == {"a": 1, "b": 2, "c": 3} and job.finished_at == 1_000.0
        assert job.last_seq == 2


async def test_event_seqs_are_gapless_and_increasing_under_concurrent_appends(
    store_opener: StoreOpener,
) -> None:
    """Twenty concurrent appends of two events each give seqs 2..41 with no gap or repeat."""
    async with store_opener() as store:
        await store.create_job(JOB, VISION, OPTIONS, {})
        batch = [NewEvent(type="progress", payload={"k": i}) for i in range(2)]
        await asyncio.gather(*(store.append_events(JOB, batch) for _ in range(20)))
        seqs = [e.seq for e in await store.events_after(JOB, 0)]
        assert seqs == list(range(1, 42))
        assert [e.seq for e in await store.events_after(JOB, 39)] == [40, 41]
        assert [e.seq for e in await store.events_after(JOB, 0, limit=3)] == [1, 2, 3]


async def test_a_committed_call_keeps_its_items_record_and_events_together(store_opener: StoreOpener) -> None:
    """commit_call stores the call, its items and its events together; counts group by kind and state."""
    async with store_opener() as store:
        await store.create_job(JOB, VISION, OPTIONS, {})
        rows = await store.commit_call(
            _call("epics:root"), [_item(0), _item(1)], [NewEvent(type="item", payload={})]
        )
        assert [e.seq for e in rows] == [2]
        await store.commit_call(_call("epics:root", "failed"), [], [])  # a re-commit replaces the record
        calls = await store.calls(JOB)
        assert [(c.call_key, c.status) for c in calls] == [("epics:root", "failed")]
        items = await store.items(JOB)
        assert [(i.id, i.state, i.body, i.depends_on) for i in items] == [
            ("i0", "held", {"n": 0}, ()),
            ("i1", "held", {"n": 1}, ()),
        ]
        await store.stage_items(JOB, "derived", [NewItem(**{**_item(2).model_dump(), "state": "pending"})])
        assert await store.item_counts(JOB) == {"epic": {"held": 2, "pending": 1}}
        assert await store.integrity_check() == "ok"


async def test_migrations_are_recorded_and_not_run_twice(store_opener: StoreOpener) -> None:
    """Opening a store twice applies every versioned migration once: the second open finds nothing to do."""
    async with store_opener() as store:
        await store.create_job(JOB, VISION, OPTIONS, {})
    async with store_opener() as store:
        assert await store.get_job(JOB) is not None
    for dialect, first in (("postgresql", 1), ("sqlite", 2)):  # SQLite's version 1 is schema.sql
        versions = [m.version for m in migrations(dialect)]
        assert versions[0] == first and versions == sorted(set(versions))


async def test_instances_starting_together_migrate_once(pg_url: str) -> None:
    """Five connections migrating at once (under the advisory lock) apply each version exactly once."""
    conns = [await asyncpg.connect(pg_url) for _ in range(5)]
    try:
        applied = await asyncio.gather(*(migrate_postgresql(c) for c in conns))
        every = len(migrations("postgresql"))
        assert sorted(len(a) for a in applied) == [0, 0, 0, 0, every]
        assert await conns[0].fetchval("SELECT count(*) FROM schema_migrations") == every
    finally:
        for c in conns:
            await c.close()


async def test_a_job_lease_is_exclusive_until_it_expires_and_fences_the_old_owner(pg_url: str) -> None:
    """A fresh job is left to its instance for a moment; B cannot take A's job while A's lease runs;
    after it expires B takes it, and A's next commit for that job is refused with LeaseLost."""
    clock = FakeClock()
    async with PgStore.open(pg_url, clock=clock) as a, PgStore.open(pg_url, clock=clock) as b:
        store: StoreBackend = a
        await store.create_job(JOB, VISION, OPTIONS, {})
        assert (
            await leases.claimable_jobs(b, 10, fresh_seconds=5.0) == []
        )  # left to the instance it was sent to
        assert await leases.claimable_jobs(b, 10) == [JOB]
        assert await leases.claim_job(a, JOB, "A", 5.0) == 1
        assert await leases.claim_job(b, JOB, "B", 5.0) is None and await leases.claimable_jobs(b, 10) == []
        assert await leases.renew_jobs(a, "A", 5.0) == {JOB}
        clock.now += 6.0
        assert await leases.claimable_jobs(b, 10) == [JOB]
        assert await leases.claim_job(b, JOB, "B", 5.0) == 2
        assert await leases.renew_jobs(a, "A", 5.0) == set()
        try:
            await a.commit_call(_call("epics:root"), [_item(0)], [NewEvent(type="item", payload={})])
            raise AssertionError("a stale owner committed")
        except LeaseLost:
            pass
        assert await b.items(JOB) == [] and await b.calls(JOB) == []
        await b.commit_call(_call("epics:root"), [_item(0)], [])
        assert [i.id for i in await b.items(JOB)] == ["i0"]


async def test_a_pause_shared_through_the_database_only_ever_extends(pg_url: str) -> None:
    """share_pause keeps the later of two deadlines for an identity; expired pauses are not listed."""
    clock = FakeClock()
    async with PgStore.open(pg_url, clock=clock) as store:
        await leases.share_pause(store, "llm:x", 1_010.0)
        await leases.share_pause(store, "llm:x", 1_005.0)
        await leases.share_pause(store, "ado:y", 999.0)
        assert await leases.pauses(store) == {"llm:x": 1_010.0}


async def test_a_sqlite_database_from_before_migrations_is_upgraded_in_place(tmp_path: Path) -> None:
    """A file made with only the baseline schema (and a job in it) opens at the newest version: the job
    is kept and the jobs table gains the lease columns, each migration recorded once."""
    path = tmp_path / "old.sqlite3"
    baseline = resources.files("outbox").joinpath("schema.sql").read_text(encoding="utf-8")
    with sqlite3.connect(path) as db:
        db.executescript(baseline)
        db.execute(
            "INSERT INTO jobs(id, status, vision, options, created_at, updated_at)"
            " VALUES ('old', 'completed', ?, ?, 1, 1)",
            (OLD_VISION, OLD_OPTIONS),
        )
    db.close()
    for _ in range(2):
        async with Store.open(path) as store:
            job = await store.get_job("old")
            assert job is not None and job.status == "completed"
            assert job.vision.sentence("S1") == Sentence(id="S1", section="vision", text="Book visits.")
            assert job.options.limits.max_epics == 2 and job.options.pat_source == "settings"
    with sqlite3.connect(path) as db:
        columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
        versions = db.execute("SELECT version FROM schema_migrations").fetchall()
    db.close()
    assert {"lease_owner", "lease_until", "fence"} <= columns
    assert versions == [(m.version,) for m in migrations("sqlite")]


# A job's vision and options as the store wrote them before they were models (and before pat_source).
OLD_VISION = (
    '{"title": "Clinic", "domain": "", "vision": "Book visits.", "target_users": [], "key_features": [], '
    '"success_metrics": [], "constraints": [], "sentences": [{"id": "S1", "section": "vision", '
    '"text": "Book visits."}]}'
)
OLD_OPTIONS = (
    '{"limits": {"max_epics": 2, "max_features_per_epic": 4, "max_stories_per_feature": 4, '
    '"max_tasks_per_story": 4, "max_test_cases_per_story": 3}, "include_qa": true, "upload_mode": '
    '"streaming", "target": "none", "organization_url": "", "project": "P", "area_path": "", '
    '"iteration_path": "", "provider": "offline"}'
)


async def test_a_job_is_stored_as_the_same_json_text_as_before_models(tmp_path: Path) -> None:
    """The store writes a job's vision and options in the very text the dict-based store wrote, and
    reads them back as the models they were made from."""
    vision = Vision.model_validate_json(OLD_VISION)
    options = JobOptions.model_validate_json(OLD_OPTIONS).model_copy(update={"pat_source": "request"})
    async with Store.open(tmp_path / "db.sqlite3") as store:
        await store.create_job(JOB, vision, options, {})
        job = await store.get_job(JOB)
    assert job is not None and job.vision == vision and job.options == options
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        stored = db.execute("SELECT vision, options FROM jobs").fetchone()
    db.close()
    assert stored == (OLD_VISION, OLD_OPTIONS[:-1] + ', "pat_source": "request", "update_of": null}')


async def test_a_postgresql_job_row_written_before_models_reads_back_as_models(pg_url: str) -> None:
    """A PostgreSQL jobs row holding the JSON text the dict-based store wrote reads back with its
    vision and options as models, and a new job is written in that same text."""
    async with PgStore.open(pg_url) as store:
        db = await asyncpg.connect(pg_url)
        try:
            await db.execute(
                "INSERT INTO jobs(id, status, vision, options, created_at, updated_at)"
                " VALUES ('old', 'completed', $1, $2, 1, 1)",
                OLD_VISION,
                OLD_OPTIONS,
            )
            job = await store.get_job("old")
            assert job is not None and job.vision.title == "Clinic"
            assert job.options.limits.max_epics == 2 and job.options.pat_source == "settings"
            await store.create_job(JOB, job.vision, job.options, {})
            stored = await db.fetchrow("SELECT vision, options FROM jobs WHERE id = $1", JOB)
        finally:
            await db.close()
    assert stored is not None
    assert (stored["vision"], stored["options"]) == (
        OLD_VISION,
        OLD_OPTIONS[:-1] + ', "pat_source": "settings", "update_of": null}',
    )


async def test_a_committed_job_is_seen_by_the_next_read_however_busy_the_reader_is(
    store_opener: StoreOpener,
) -> None:
    """Read-after-commit: while other readers keep the reader busy, every job ``create_job`` committed is
    found by the very next ``get_job`` (a read snapshot held open by an unfinished cursor would hide it)."""
    async with store_opener() as store:
        stop = asyncio.Event()

        async def busy() -> None:
            while not stop.is_set():
                await store.list_jobs(50)
                await store.events_after("nobody", 0)

        readers = [asyncio.create_task(busy()) for _ in range(8)]

        async def create_and_read(n: int) -> bool:
            await store.create_job(f"job-{n}", VISION, OPTIONS, {})
            return await store.get_job(f"job-{n}") is not None

        try:
            seen = [
                ok
                for batch in range(10)
                for ok in await asyncio.gather(*(create_and_read(batch * 20 + i) for i in range(20)))
            ]
        finally:
            stop.set()
            await asyncio.gather(*readers)
    assert seen == [True] * 200
