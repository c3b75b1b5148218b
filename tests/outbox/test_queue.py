"""The outbox state machine on both backends (a real SQLite file, a real PostgreSQL database):
parent-first claims, leases, fences, dead, requeue."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from outbox import queue
from outbox.backend import StoreBackend as Store
from outbox.records import ItemRow
from tests.outbox.test_upload_support import FakeClock, stage, tree
from tests.pgdb import StoreOpener

JOB = "job-q"
LEASE = 10.0


@pytest.fixture
async def store(store_opener: StoreOpener) -> AsyncIterator[Store]:
    async with store_opener(clock=FakeClock()) as s:
        yield s


async def _claim(store: Store, now: float = 1_000.0, owner: str = "a", limit: int = 1_000) -> list[ItemRow]:
    return await queue.claim(store, [JOB], owner, now, LEASE, limit)


async def _upload(store: Store, rows: list[ItemRow]) -> None:
    for n, row in enumerate(rows):
        assert await queue.mark_uploaded(store, row, 100 + n, f"u/{n}", 1, {})


async def _rows(store: Store) -> dict[str, ItemRow]:
    return {r.id: r for r in await store.items(JOB)}


def _kinds(rows: list[ItemRow]) -> list[str]:
    return sorted(r.kind for r in rows)


async def test_children_are_claimed_only_after_their_parents_are_uploaded(store: Store) -> None:
    """Each claim round yields only items whose parent and prerequisites are uploaded, level by level."""
    await stage(store, JOB, tree(JOB, 1, 1, 1, 1, 1))
    rounds = []
    while rows := await _claim(store):
        rounds.append(_kinds(rows))
        await _upload(store, rows)
    assert rounds == [["epic"], ["feature"], ["story", "test_plan"], ["task", "test_suite"], ["test_case"]]


async def test_suite_waits_for_plan_and_story_and_case_waits_for_suite(store: Store) -> None:
    """A test suite needs its story and its plan uploaded; a test case needs its suite, not just its story."""
    await stage(store, JOB, tree(JOB, 1, 1, 1, 0, 1))
    await _upload(store, await _claim(store))  # epic
    await _upload(store, await _claim(store))  # feature
    level2 = {r.kind: r for r in await _claim(store)}
    await _upload(store, [level2["story"]])  # the plan stays in flight
    assert await _claim(store) == []  # suite lacks its plan; test case lacks its suite
    await _upload(store, [level2["test_plan"]])
    suite = await _claim(store)
    assert _kinds(suite) == ["test_suite"]
    assert await _claim(store) == []  # story uploaded, suite in flight: the case still waits
    await _upload(store, suite)
    assert _kinds(await _claim(store)) == ["test_case"]


async def test_expired_lease_is_reclaimed_with_reconcile(store: Store) -> None:
    """An in-flight item is not claimable during its lease; once expired a new owner gets it to reconcile."""
    await stage(store, JOB, tree(JOB, 1, 0))
    [first] = await _claim(store, owner="a")
    assert not first.reconcile and first.attempts == 1
    assert await _claim(store, now=1_000 + LEASE - 1, owner="b") == []
    [again] = await _claim(store, now=1_000 + LEASE + 1, owner="b")
    assert again.reconcile and again.lease_owner == "b" and again.fence == first.fence + 1
    assert again.attempts == 2
    stored = (await _rows(store))[again.id]
    assert stored.reconcile and stored.lease_owner == "b" and stored.lease_until == 1_000 + 2 * LEASE + 1


async def test_stale_owner_cannot_overwrite_after_reclaim(store: Store) -> None:
    """After a reclaim the old owner's uploaded/retry/dead writes change nothing; the new owner's wins."""
    await stage(store, JOB, tree(JOB, 1, 0))
    [stale] = await _claim(store, owner="a")
    [fresh] = await _claim(store, now=1_000 + LEASE + 1, owner="b")
    assert await queue.mark_uploaded(store, stale, 1, "u/old", 1, {}) == []
    assert await queue.mark_retry(store, stale, 0.0, "old", reconcile=False) == []
    assert await queue.mark_dead(store, stale, "old") == []
    row = (await _rows(store))[fresh.id]
    assert (row.state, row.lease_owner, row.ado_id, row.error) == ("in_flight", "b", None, None)
    events = await queue.mark_uploaded(store, fresh, 7, "u/new", 2, {})
    assert [e.payload["state"] for e in events] == ["uploaded"]
    assert await queue.mark_uploaded(store, stale, 1, "u/old", 1, {}) == []
    row = (await _rows(store))[fresh.id]
    assert (row.state, row.ado_id, row.ado_url) == ("uploaded", 7, "u/new")


async def test_nothing_is_deleted_on_success(store: Store) -> None:
    """Uploaded rows stay in the table with their ADO id, URL and revision; no row disappears."""
    items = tree(JOB, 1, 1, 1, 1, 1)
    await stage(store, JOB, items)
    while rows := await _claim(store):
        await _upload(store, rows)
    rows_after = await _rows(store)
    assert set(rows_after) == {i.id for i in items}
    assert all(
        r.state == "uploaded" and r.ado_id and r.ado_url and r.ado_rev == 1 for r in rows_after.values()
    )
    assert await queue.open_count(store, JOB) == 0


async def test_dead_item_blocks_every_descendant_with_the_reason(store: Store) -> None:
    """A dead feature blocks its stories, plan, suites, tasks and test cases (never skipped), with why."""
    await stage(store, JOB, tree(JOB, 1, 2, 2, 1, 1))
    await _upload(store, await _claim(store))  # epic
    features = sorted(await _claim(store), key=lambda r: r.position)
    events = await queue.mark_dead(store, features[0], "HTTP 400: TF401320: rule failed")
    rows = await _rows(store)
    dead_subtree = {r.id for r in rows.values() if r.id != features[0].id and _under(rows, r, features[0].id)}
    assert len(dead_subtree) == 1 + 2 * (1 + 1 + 1 + 1)  # plan + 2 × (story, suite, task, case)
    assert rows[features[0].id].state == "dead"
    assert rows[features[0].id].error == "HTTP 400: TF401320: rule failed"
    for item_id in dead_subtree:
        assert rows[item_id].state == "blocked"
        assert "could not be uploaded" in (rows[item_id].error or "")
    others = [r for r in rows.values() if r.id not in dead_subtree | {features[0].id}]
    assert all(r.state in ("pending", "uploaded", "in_flight") for r in others)
    assert [e.payload["state"] for e in events].count("blocked") == len(dead_subtree)
    assert events[0].payload == {**events[0].payload, "state": "dead", "id": features[0].id}


async def test_dead_prerequisite_blocks_dependants_outside_the_parent_line(store: Store) -> None:
    """A dead test plan blocks the suites that depend on it and their test cases, but not the stories."""
    await stage(store, JOB, tree(JOB, 1, 1, 2, 1, 1))
    await _upload(store, await _claim(store))
    await _upload(store, await _claim(store))
    level2 = await _claim(store)
    plan = next(r for r in level2 if r.kind == "test_plan")
    await _upload(store, [r for r in level2 if r.kind == "story"])
    await queue.mark_dead(store, plan, "no plan")
    states = {(r.kind, r.state) for r in (await _rows(store)).values()}
    assert ("test_suite", "blocked") in states and ("test_case", "blocked") in states
    assert ("story", "uploaded") in states and ("task", "pending") in states
    assert _kinds(await _claim(store)) == ["task", "task"]  # blocked items are never claimed


async def test_requeue_moves_dead_and_blocked_back_to_pending(store: Store) -> None:
    """Requeue turns dead and blocked items pending again (a dead one reconciles first) and they upload."""
    await stage(store, JOB, tree(JOB, 1, 1, 1, 1, 1))
    [epic] = await _claim(store)
    await queue.mark_dead(store, epic, "boom")
    assert await _claim(store) == []
    events = await queue.requeue(store, JOB)
    rows = await _rows(store)
    assert len(events) == len(rows)
    assert {r.state for r in rows.values()} == {"pending"}
    assert rows[epic.id].reconcile and rows[epic.id].attempts == 0
    assert not any(r.reconcile for r in rows.values() if r.id != epic.id)
    while claimed := await _claim(store):
        await _upload(store, claimed)
    assert {r.state for r in (await _rows(store)).values()} == {"uploaded"}


async def test_release_leases_gives_back_only_this_owners_items(store: Store) -> None:
    """On shutdown an owner's leases return to pending with reconcile set; other owners keep theirs."""
    await stage(store, JOB, tree(JOB, 2, 0))
    [mine] = await _claim(store, owner="a", limit=1)
    [theirs] = await _claim(store, owner="b", limit=1)
    assert await queue.release_leases(store, "a") == 1
    rows = await _rows(store)
    assert (rows[mine.id].state, rows[mine.id].lease_owner, rows[mine.id].reconcile) == (
        "pending",
        None,
        True,
    )
    assert (rows[theirs.id].state, rows[theirs.id].lease_owner) == ("in_flight", "b")
    assert await queue.mark_uploaded(store, mine, 1, "u", 1, {}) == []  # the released lease is fenced out
    [again] = await _claim(store, owner="c")
    assert again.id == mine.id and again.reconcile


async def test_held_items_wait_for_release(store: Store) -> None:
    """Held items (after-generation and manual modes) are not claimable until released."""
    await stage(store, JOB, tree(JOB, 1, 0, state="held"))
    assert await _claim(store) == []
    assert await queue.release(store, JOB) == 1
    assert _kinds(await _claim(store)) == ["epic"]


def _under(rows: dict[str, ItemRow], row: ItemRow, root: str) -> bool:
    """Whether ``row`` descends from ``root`` through parents or prerequisites."""
    todo = [row.parent_id, *row.depends_on]
    while todo:
        current = todo.pop()
        if current is None:
            continue
        if current == root:
            return True
        todo += [rows[current].parent_id, *rows[current].depends_on]
    return False


async def test_items_staged_under_a_dead_parent_become_blocked(store: Store) -> None:
    """Children generated after their parent died (streaming) are blocked with the reason, level by level."""
    items = tree(JOB, 1, 1, 1, 1, 1)
    epic, rest = items[0], items[1:]
    await stage(store, JOB, [epic])
    [claimed] = await _claim(store)
    await queue.mark_dead(store, claimed, "HTTP 401")
    await store.stage_items(JOB, "later", rest)
    assert await _claim(store) == []
    events = await queue.block_orphans(store, [JOB])
    rows = await _rows(store)
    assert {r.state for r in rows.values() if r.id != epic.id} == {"blocked"}
    assert len(events) == len(rest) and {e.payload["state"] for e in events} == {"blocked"}
    assert "could not be uploaded" in (rows[rest[0].id].error or "")
    assert await queue.block_orphans(store, [JOB]) == []
    assert await queue.open_count(store, JOB) == 0


async def test_busy_items_are_not_re_leased_to_their_worker(store: Store) -> None:
    """An item the relay still works on is not re-leased to it when its lease runs out (no self-fencing)."""
    await stage(store, JOB, tree(JOB, 1, 0))
    [mine] = await _claim(store, owner="a")
    late = 1_000 + LEASE + 1
    assert await queue.claim(store, [JOB], "a", late, LEASE, 10, busy=[mine.id]) == []
    assert await queue.mark_uploaded(store, mine, 5, "u", 1, {})  # its fence still holds
    assert (await _rows(store))[mine.id].state == "uploaded"
