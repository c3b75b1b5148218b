"""Edits and update outcomes in the store, the same on SQLite and PostgreSQL: an edit of an uploaded
row makes it a pending update, an edit while in flight follows the upload, a conflict keeps theirs,
the user's choice resolves it, and a deletion takes the subtree with its QA items."""

from __future__ import annotations

from outbox import edits, queue
from outbox.records import CallRow, ItemRow, NewEvent, NewItem
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


async def test_release_replace_children_and_open_jobs_on_both_backends(store_opener: StoreOpener) -> None:
    """Releasing an epic makes its held subtree (QA too) pending and nothing else; a finished job with an
    open item is found for the relay; replacing a story's tasks keeps its suite and records the call."""
    async with store_opener(clock=FakeClock()) as store:
        await stage(store, JOB, tree(JOB, epics=2, state="held"))
        rows = await store.items(JOB)
        first = rows[0]
        assert await edits.jobs_with_open_items(store) == []
        released = await edits.release(store, JOB, [first.id])
        after = {r.id: r.state for r in await store.items(JOB)}
        pending = {i for i, s in after.items() if s == "pending"}
        assert len(pending) == released == len(rows) // 2
        assert first.id in pending and all(s == "held" for i, s in after.items() if i not in pending)
        assert await edits.jobs_with_open_items(store) == [JOB]
        story = next(r for r in rows if r.kind == "story")
        old = [r.id for r in rows if r.parent_id == story.id and r.kind in ("task", "test_case")]
        call = CallRow(
            job_id=JOB,
            call_key="tasks:x:regenerate-1",
            stage="tasks",
            parent_id=story.id,
            status="done",
            prompt_hash="h",
            attempts=1,
        )
        new = NewItem(
            id="new-task",
            parent_id=story.id,
            kind="task",
            level=3,
            position=0,
            title="New task",
            body={"title": "New task"},
        )
        seen: list[list[str]] = []

        def events(gone: list[ItemRow], added: list[ItemRow]) -> list[NewEvent]:
            seen.append(sorted(r.id for r in gone))
            seen.append([r.id for r in added])
            return [NewEvent(type="edit", payload={"change": "regenerated"})]

        await edits.replace_children(store, JOB, story.id, ["task", "test_case"], [call], [new], events)
        left = {r.id: r for r in await store.items(JOB)}
        assert seen == [sorted(old), ["new-task"]]
        assert not set(old) & set(left) and "new-task" in left
        assert any(r.kind == "test_suite" and r.parent_id == story.id for r in left.values())
        assert "tasks:x:regenerate-1" in [c.call_key for c in await store.calls(JOB)]
