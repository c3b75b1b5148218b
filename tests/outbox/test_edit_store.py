"""Edits and update outcomes in the store, the same on SQLite and PostgreSQL: an edit of an uploaded
row makes it a pending update, an edit while in flight follows the upload, a conflict keeps theirs,
the user's choice resolves it, and a deletion takes the subtree with its QA items."""

from __future__ import annotations

from outbox import edits, queue
from outbox.records import ItemRow, NewEvent
from tests.outbox.test_upload_support import FakeClock, stage, tree
from tests.pgdb import StoreOpener

JOB = "job-e"


def _edited(rows: list[ItemRow]) -> list[NewEvent]:
    return [NewEvent(type="edit", payload={"change": "edited", "item_id": r.id}) for r in rows]


async def _claim_all(store: object, now: float = 1_000.0) -> list[ItemRow]:
    return await queue.claim(store, [JOB], "me", now, 60.0, 100)  # type: ignore[arg-type]


async def test_edit_upload_update_conflict_and_resolution_on_both_backends(store_opener: StoreOpener) -> None:
    """uploaded → edit → pending update; in flight + edit → pending after the ack; conflict → keep ours."""
    async with store_opener(clock=FakeClock()) as store:
        await stage(store, JOB, tree(JOB, qa=False, cases=0))
        epic = (await _claim_all(store))[0]
        await queue.mark_uploaded(store, epic, 7, "u", 1, {}, {"System.Title": epic.title})
        events = await edits.edit(store, JOB, epic.id, "New", {**epic.body, "title": "New"}, _edited)
        assert [e.type for e in events] == ["edit"]
        row = next(r for r in await store.items(JOB) if r.id == epic.id)
        assert row.state == "pending" and row.title == "New" and row.ado_rev == 1
        assert row.written == {"System.Title": epic.title}
        claimed = next(r for r in await _claim_all(store) if r.id == epic.id)
        await edits.edit(store, JOB, epic.id, "Newer", {**epic.body, "title": "Newer"}, _edited)
        acked = await queue.mark_uploaded(store, claimed, 7, "u", 2, {}, {"System.Title": "New"})
        assert [e.payload["state"] for e in acked] == ["uploaded", "pending"]
        assert acked[0].payload["update"] is True and acked[0].payload["rev"] == 2
        again = next(r for r in await _claim_all(store) if r.id == epic.id)
        theirs = {"title": "Theirs", "rev": 3, "changed_by": "Ann"}
        await queue.mark_conflict(store, again, theirs, {"System.Title": "Theirs"})
        row = next(r for r in await store.items(JOB) if r.id == epic.id)
        assert (
            row.state == "conflict"
            and row.conflict == {"theirs": theirs, "fields": {"System.Title": "Theirs"}}
            and "Ann" in (row.error or "")
        )
        await edits.keep_ours(store, JOB, epic.id, 3, _edited)
        row = next(r for r in await store.items(JOB) if r.id == epic.id)
        assert row.state == "pending" and row.ado_rev == 3 and row.conflict is None


async def test_keep_theirs_and_delete_subtree_on_both_backends(store_opener: StoreOpener) -> None:
    """Keeping theirs adopts their values as uploaded; deleting a feature removes its stories, tasks,
    plan, suites and cases, and nothing else."""
    async with store_opener(clock=FakeClock()) as store:
        await stage(store, JOB, tree(JOB, features=2))
        rows = await store.items(JOB)
        story = next(r for r in rows if r.kind == "story")
        await edits.conflict(store, JOB, story.id, {"theirs": {"title": "T", "rev": 4}}, "x", _edited)
        await edits.keep_theirs(store, JOB, story.id, "T", {"title": "T"}, 4, {"System.Title": "T"}, _edited)
        kept = next(r for r in await store.items(JOB) if r.id == story.id)
        assert kept.state == "uploaded" and kept.title == "T" and kept.ado_rev == 4 and kept.conflict is None
        assert kept.written == {"System.Title": "T"}
        feature = next(r for r in rows if r.kind == "feature")
        removed: list[str] = []

        def gone(rows: list[ItemRow]) -> list[NewEvent]:
            removed.extend(r.id for r in rows)
            return [NewEvent(type="edit", payload={"change": "deleted", "removed": removed})]

        await edits.remove(store, JOB, feature.id, gone)
        left = await store.items(JOB)
        under = {r.id for r in rows if r.parent_id == feature.id}
        assert feature.id in removed and under <= set(removed)
        assert {r.kind for r in rows if r.id in removed} == {
            "feature",
            "test_plan",
            "story",
            "test_suite",
            "task",
            "test_case",
        }
        assert len(left) == len(rows) - len(removed) == len(rows) // 2 + 1  # the epic and the other feature
        assert all(r.id not in removed for r in left)
