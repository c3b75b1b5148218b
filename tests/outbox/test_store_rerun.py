"""The store's part in re-runs on both backends: finding a vision's latest job, applying a matching."""

from __future__ import annotations

import pytest

from outbox.errors import VisionTaken
from outbox.records import ItemMatch, NewEvent, NewItem
from tests.jobrows import OPTIONS, VISION
from tests.outbox.test_upload_support import FakeClock
from tests.pgdb import StoreOpener
from vocab import ItemState, JobStatus


async def test_the_latest_job_of_a_vision_key_skips_failed_ones(store_opener: StoreOpener) -> None:
    """Of the jobs with one vision key the newest not failed or cancelled is found; other keys and
    jobs without a key never are."""
    clock = FakeClock()
    async with store_opener(clock=clock) as store:
        for job_id, key in (("a", "k1"), ("b", "k1"), ("c", "k2"), ("d", None), ("e", "k1")):
            clock.now += 1
            await store.create_job(job_id, VISION, OPTIONS, {}, vision_key=key)
        await store.set_job_status("e", JobStatus.FAILED)
        skip = (JobStatus.FAILED, JobStatus.CANCELLED)
        found = await store.latest_with_key("k1", skip)
        assert found is not None and found.id == "b" and found.vision_key == "k1"
        assert await store.latest_with_key("k3", skip) is None
        await store.set_job_status("b", JobStatus.CANCELLED)
        await store.set_job_status("a", JobStatus.COMPLETED)
        again = await store.latest_with_key("k1", skip)
        assert again is not None and again.id == "a"


async def test_a_guarded_insert_refuses_a_copy_in_its_transaction(store_opener: StoreOpener) -> None:
    """With a copy guard, a job of a vision key that a job in another status holds is refused
    (VisionTaken names it, nothing is written); a failed holder or no guard lets it in."""
    skip = (JobStatus.FAILED, JobStatus.CANCELLED)
    async with store_opener(clock=FakeClock()) as store:
        await store.create_job("a", VISION, OPTIONS, {}, vision_key="k", copy_guard=skip)
        with pytest.raises(VisionTaken) as refused:
            await store.create_job("b", VISION, OPTIONS, {}, vision_key="k", copy_guard=skip)
        assert refused.value.job_id == "a" and await store.get_job("b") is None
        await store.create_job("c", VISION, OPTIONS, {}, vision_key="k")  # no guard: a copy on purpose
        await store.set_job_status("a", JobStatus.FAILED)
        await store.set_job_status("c", JobStatus.CANCELLED)
        await store.create_job("d", VISION, OPTIONS, {}, vision_key="k", copy_guard=skip)
        assert await store.get_job("d") is not None


async def test_a_matching_is_applied_in_one_transaction(store_opener: StoreOpener) -> None:
    """Applying a matching labels each item, copies the previous work item's id, link, revision,
    extras and what was written, sets the given states (keeping the others), inserts the vanished
    rows and appends the events."""
    async with store_opener(clock=FakeClock()) as store:
        await store.create_job("j", VISION, OPTIONS, {})
        held = [
            NewItem(id=f"i{n}", parent_id=None, kind="epic", level=0, position=n, title=f"T{n}", body={})
            for n in range(3)
        ]
        await store.stage_items("j", "epics:root", held)
        vanished = NewItem(
            id="v", parent_id=None, kind="epic", level=0, position=9, title="Old", body={}, state="uploaded"
        )
        matches = [
            ItemMatch(
                id="i0", match="unchanged", state=ItemState.UPLOADED, ado_id=7, ado_url="u7", ado_rev=2
            ),
            ItemMatch(
                id="i1",
                match="updated",
                state=ItemState.PENDING,
                ado_id=8,
                ado_url="u8",
                ado_rev=1,
                written={"title": "x"},
            ),
            ItemMatch(id="i2", match="new"),
            ItemMatch(id="v", match="vanished", ado_id=9, ado_url="u9", ado_rev=4, ado_extra={"plan_id": 1}),
        ]
        events = await store.apply_matches("j", matches, [vanished], [NewEvent(type="item", payload={})])
        assert [e.seq for e in events] == [2]
        rows = {r.id: r for r in await store.items("j")}
        got = {k: (r.match, r.state, r.ado_id, r.ado_url, r.ado_rev, r.ado_extra) for k, r in rows.items()}
        assert rows["i1"].written == {"title": "x"} and rows["i0"].written is None
        assert got == {
            "i0": ("unchanged", "uploaded", 7, "u7", 2, {}),
            "i1": ("updated", "pending", 8, "u8", 1, {}),
            "i2": ("new", "held", None, None, None, {}),
            "v": ("vanished", "uploaded", 9, "u9", 4, {"plan_id": 1}),
        }
