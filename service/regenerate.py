"""Regenerate one item's children with the user's instruction, through the job's provider.

Each child stage of the item runs again under a new call key (so it is recorded once, and a restart
never repeats it), its answer checked like any other; then the old children (and everything under
them) are replaced by the new ones in one transaction with one ``regenerated`` edit event. Only
while none of those children is in Azure DevOps: replacing uploaded work items would orphan them.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable

import structlog

from outbox import edits
from outbox.backend import StoreBackend
from outbox.records import CallRow, EventRow, ItemRow, JobRow, NewEvent, NewItem
from service.edit_events import edit_event
from service.errors import ItemNotFound, ItemStateError, JobNotFound, JobStateError
from service.export import item_view
from service.items import STAGES_BY_KIND, JobContext, as_item, new_items
from service.progress import Progress
from service.runner import GenerationRunner
from service.uploads import UploadCoordinator
from stages.definitions import child_stages
from stages.errors import OutputInvalid, OutputTruncated, ProviderPermanent, ProviderTransient
from vocab import OPEN_JOB_STATES, ItemState, JobStatus
from vocab.options import JobOptions

log = structlog.get_logger("backlogd.regenerate")
_HOLDING = (JobStatus.AWAITING_REVIEW, JobStatus.AWAITING_UPLOAD)


class Regenerator:
    def __init__(
        self,
        store: StoreBackend,
        runner: GenerationRunner,
        uploads: UploadCoordinator | None,
        publish: Callable[[list[EventRow]], None],
    ) -> None:
        self.store = store
        self.runner = runner
        self.uploads = uploads
        self.publish = publish
        self._tasks: dict[str, asyncio.Task[None]] = {}  # item id → its regeneration

    async def start(self, job_id: str, item_id: str, instruction: str, author: str) -> None:
        """Check at once (404, 409 job still generating, 409 ``children_uploaded``), then run in the
        background; the result arrives as an ``edit`` event (or an ``error`` event)."""
        job = await self.store.get_job(job_id)
        if job is None:
            raise JobNotFound(job_id)
        if job.status in OPEN_JOB_STATES:
            raise JobStateError(f"job {job_id} is still generating; regenerate once it has finished")
        rows = await self.store.items(job_id)
        row = next((r for r in rows if r.id == item_id), None)
        if row is None:
            raise ItemNotFound(job_id, item_id)
        options = job.options
        stages = child_stages(row.kind, options.include_qa)
        if row.kind not in STAGES_BY_KIND or not stages:
            raise ItemStateError("no_children", f"a {row.kind} has no generated children to regenerate")
        below = descendants(rows, item_id, {s.kind for s in stages})
        if any(r.ado_id is not None or r.state == ItemState.IN_FLIGHT for r in below):
            raise ItemStateError(
                "children_uploaded",
                f"some children of {row.kind} {item_id} are in Azure DevOps already; "
                "edit or delete them instead",
            )
        if item_id in self._tasks:
            raise ItemStateError("regenerating", f"{row.kind} {item_id} is being regenerated already")
        work = self._run(job, options, rows, row, instruction, author)
        task = asyncio.get_running_loop().create_task(work, name=f"regenerate-{item_id}")
        self._tasks[item_id] = task
        task.add_done_callback(lambda _: self._tasks.pop(item_id, None))

    async def wait(self, item_id: str) -> None:
        task = self._tasks.get(item_id)
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    async def _run(
        self,
        job: JobRow,
        options: JobOptions,
        rows: list[ItemRow],
        row: ItemRow,
        instruction: str,
        author: str,
    ) -> None:
        state = ItemState.HELD if job.status in _HOLDING or not options.uploading else ItemState.PENDING
        ctx = _context(job, options, rows, state)
        parent = ctx.items[row.id]
        calls: list[CallRow] = []
        items: list[NewItem] = []
        stages = child_stages(row.kind, options.include_qa)
        try:
            for stage in stages:
                key = f"{stage.name}:{row.id}:regenerate-{uuid.uuid4().hex[:12]}"
                outcome = await self.runner.answer(ctx, stage, parent, instruction)
                items += new_items(ctx, stage, parent, key, outcome.bodies)
                calls.append(outcome.row(job.id, key, stage.name, row.id))
        except (ProviderPermanent, ProviderTransient, OutputInvalid, OutputTruncated) as exc:
            log.warning("regenerate_failed", job_id=job.id, item_id=row.id, error=str(exc)[:300])
            error = {"stage": "regenerate", "message": str(exc)[:500], "parent_id": row.id}
            self.publish(await self.store.append_events(job.id, [NewEvent(type="error", payload=error)]))
            return
        kinds = [s.kind for s in stages]

        def events(gone: list[ItemRow], new: list[ItemRow]) -> list[NewEvent]:
            removed = [r.id for r in gone]
            added = [item_view(r) for r in new]
            ev = edit_event(
                "regenerated",
                row,
                author,
                item_id=row.id,
                removed=removed,
                added=added,
                instruction=instruction,
            )
            return [ev]

        self.publish(await edits.replace_children(self.store, job.id, row.id, kinds, calls, items, events))
        log.info("item_regenerated", job_id=job.id, item_id=row.id, items=len(items))
        if state == ItemState.PENDING and self.uploads is not None:
            self.uploads.follow(job.id)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def descendants(rows: list[ItemRow], root: str, kinds: set[str] | None = None) -> list[ItemRow]:
    """The root's children (of ``kinds``, or all) and everything under them or depending on them."""
    found = {r.id for r in rows if r.parent_id == root and (kinds is None or r.kind in kinds)}
    for r in rows:  # rows come parents first (level order)
        if r.parent_id in found or any(d in found for d in r.depends_on):
            found.add(r.id)
    return [r for r in rows if r.id in found]


def _context(job: JobRow, options: JobOptions, rows: list[ItemRow], state: ItemState) -> JobContext:
    progress = Progress.starting(job.id, options, time.monotonic())
    ctx = JobContext(
        job_id=job.id,
        vision=job.vision,
        limits=options.limits,
        include_qa=options.include_qa,
        item_state=state,
        progress=progress,
    )
    for r in rows:
        if r.kind in STAGES_BY_KIND:
            ctx.add(as_item(job.id, r))
    return ctx
