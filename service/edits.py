"""A user's edits of a job's backlog: change, add, delete, resolve a conflict.

Each edit is one transaction (``outbox/edits.py``) with one ``edit`` event — the audit record (who,
when, what changed, before and after) and what every open page applies — published after the commit.
An edit of an uploaded item becomes an update of its work item, which the relay sends even when the
job has finished. Before saving such an edit the work item is read: if someone changed a field we
own in Azure DevOps since our upload, nothing is saved or sent and the item shows the conflict.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import structlog

from outbox import edits
from outbox.ado import owned
from outbox.ado.errors import AdoError
from outbox.backend import StoreBackend
from outbox.queue import conflict_error
from outbox.records import EventRow, ItemRow, JobRow, NewEvent, NewItem
from service.edit_events import AZURE_DEVOPS, edit_event
from service.errors import EditConflict, InvalidInput, ItemNotFound, ItemStateError, JobNotFound
from service.export import EDITABLE, edit_fields
from service.item_rules import ItemPatch, NewItemBody, child_kind_problem, field_problems, sibling_problem
from service.uploads import UploadCoordinator
from stages.models import OUT_MODELS
from vocab import KINDS, ItemKind, ItemState, JobStatus

log = structlog.get_logger("backlogd.edits")
_SENT = (ItemState.UPLOADED, ItemState.IN_FLIGHT)  # an edit of these must reach the work item
_REVIEWING = (JobStatus.AWAITING_REVIEW, JobStatus.AWAITING_UPLOAD)


class ItemEditor:
    def __init__(
        self,
        store: StoreBackend,
        uploads: UploadCoordinator | None,
        publish: Callable[[list[EventRow]], None],
        delete_action: str = "close",
    ) -> None:
        self.store = store
        self.uploads = uploads
        self.publish = publish
        self.delete_action = delete_action

    async def _rows(self, job_id: str) -> tuple[JobRow, list[ItemRow]]:
        job = await self.store.get_job(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job, await self.store.items(job_id)

    async def _row(self, job_id: str, item_id: str) -> tuple[JobRow, list[ItemRow], ItemRow]:
        job, rows = await self._rows(job_id)
        row = next((r for r in rows if r.id == item_id), None)
        if row is None:
            raise ItemNotFound(job_id, item_id)
        return job, rows, row

    def _send(self, job_id: str, item: dict[str, Any]) -> None:
        """The relay takes the job until this edit's update has gone out (a finished job too)."""
        if self.uploads is not None and item["upload"]["state"] in (ItemState.PENDING, ItemState.IN_FLIGHT):
            self.uploads.follow(job_id)

    # ----- change -----------------------------------------------------------------------------

    async def patch(self, job_id: str, item_id: str, patch: ItemPatch, author: str) -> dict[str, Any]:
        _, rows, row = await self._row(job_id, item_id)
        changes = patch.changes()
        if not changes:
            raise InvalidInput(
                "nothing to change", [{"field": "(body)", "message": f"give any of {', '.join(EDITABLE)}"}]
            )
        body = {**row.body, **{k: v for k, v in changes.items() if k != "title"}}
        title = str(changes.get("title", row.title)).strip()
        body["title"] = title
        problems = field_problems(row.kind, {**body, "title": title}, set(changes))
        if "title" in changes:
            problems += sibling_problem(rows, row.id, row.parent_id, row.kind, title)
        if problems:
            raise InvalidInput(f"{len(problems)} invalid field(s) of {row.kind} {item_id}", problems)
        if row.state == ItemState.CONFLICT:
            raise EditConflict(
                f"{row.kind} {item_id} is in conflict: resolve it first", edit_fields(row), _theirs(row)
            )
        await self._check_unchanged_in_ado(row, {"title": title, **body})
        before = edit_fields(row)
        fields = sorted(changes)
        after_values = {"title": title, **body}
        was = {f: before.get(f) for f in fields}
        now_is = {f: after_values.get(f) for f in fields}

        def events(after: list[ItemRow]) -> list[NewEvent]:
            ev = edit_event(
                "edited", after[0], author, item_id=item_id, fields=fields, before=was, after=now_is
            )
            return [ev]

        committed = await edits.edit(self.store, job_id, item_id, title, body, events)
        self.publish(committed)
        now = _item_of(committed)
        self._send(job_id, now)
        log.info("item_edited", job_id=job_id, item_id=item_id, fields=fields, author=author)
        return now

    async def _check_unchanged_in_ado(self, row: ItemRow, ours: dict[str, Any]) -> None:
        """An uploaded item: read its work item; a change of a field we own since our write is a
        conflict (state ``conflict``, 409 with both versions), not an overwrite."""
        if (
            row.state != ItemState.UPLOADED
            or row.ado_id is None
            or row.ado_rev is None
            or self.uploads is None
        ):
            return
        if row.kind in (ItemKind.TEST_PLAN, ItemKind.TEST_SUITE):
            return
        client = await self.uploads.ado_client(row.job_id)
        if client is None:
            return
        try:
            current = await client.work_item(row.ado_id)
        except AdoError as exc:  # the relay's test of the revision still guards the update
            log.warning("edit_precheck_failed", item_id=row.id, error=str(exc)[:200])
            return
        in_ado = owned.pick(current.get("fields") or {})
        if int(current.get("rev") or 0) == row.ado_rev or owned.same(row.written or {}, in_ado):
            return
        theirs = owned.theirs(current)

        def events(after: list[ItemRow]) -> list[NewEvent]:
            return [edit_event("conflict", after[0], AZURE_DEVOPS, item_id=row.id, fields=[])]

        stored = {"theirs": theirs, "fields": in_ado}
        self.publish(
            await edits.conflict(self.store, row.job_id, row.id, stored, conflict_error(theirs), events)
        )
        ours_view = {k: v for k, v in ours.items() if k in EDITABLE}
        raise EditConflict(
            f"work item {row.ado_id} was changed in Azure DevOps since our upload", ours_view, theirs
        )

    # ----- resolve ----------------------------------------------------------------------------

    async def resolve(self, job_id: str, item_id: str, keep: str, author: str) -> dict[str, Any]:
        _, _, row = await self._row(job_id, item_id)
        if row.state != ItemState.CONFLICT or not row.conflict:
            raise ItemStateError("not_in_conflict", f"{row.kind} {item_id} is {row.state}, not in conflict")
        theirs = _theirs(row)
        rev = int(theirs.get("rev") or 0)

        def events(after: list[ItemRow]) -> list[NewEvent]:
            return [edit_event("resolved", after[0], author, item_id=item_id, fields=[], keep=keep)]

        if keep == "ours":
            committed = await edits.keep_ours(self.store, job_id, item_id, rev, events)
        else:
            adopted = {k: v for k, v in theirs.items() if k in EDITABLE and k != "title"}
            body = {**row.body, **{k: v for k, v in adopted.items() if k in row.body or k == "description"}}
            title = str(theirs.get("title") or row.title)
            body["title"] = title
            written = dict(row.conflict.get("fields") or {})
            committed = await edits.keep_theirs(
                self.store, job_id, item_id, title, body, rev, written, events
            )
        self.publish(committed)
        now = _item_of(committed)
        self._send(job_id, now)
        return now

    # ----- add and delete ---------------------------------------------------------------------

    async def add(self, job_id: str, new: NewItemBody, author: str) -> dict[str, Any]:
        job, rows = await self._rows(job_id)
        parent = next((r for r in rows if r.id == new.parent_id), None)
        if new.parent_id is not None and parent is None:
            raise InvalidInput(
                f"job {job_id} has no item {new.parent_id}",
                [{"field": "parent_id", "message": "no such item in this job"}],
            )
        problems = child_kind_problem(parent, new.type)
        given = new.model_dump(exclude_unset=True, exclude={"parent_id", "type"}, mode="json")
        body: dict[str, Any] = {
            "description": new.title,
            "sources": list(parent.body.get("sources", [])) if parent else [],
        }
        body.update(given)
        body["title"] = new.title.strip()
        problems += field_problems(new.type, body, set(given) | set(_required(new.type)))
        problems += sibling_problem(rows, None, new.parent_id, new.type, body["title"])
        if problems:
            raise InvalidInput(f"{len(problems)} invalid field(s) of the new {new.type}", problems)
        siblings = [r.position for r in rows if r.parent_id == new.parent_id and r.kind == new.type]
        held = job.status in _REVIEWING or not job.options.uploading
        item = NewItem(
            id=str(uuid.uuid4()),
            parent_id=new.parent_id,
            kind=ItemKind(new.type),
            level=KINDS[ItemKind(new.type)].level,
            position=max(siblings, default=-1) + 1,
            title=body["title"],
            body=body,
            state=ItemState.HELD if held else ItemState.PENDING,
        )

        def events(after: list[ItemRow]) -> list[NewEvent]:
            return [edit_event("added", after[0], author, item_id=item.id, fields=sorted(given))]

        committed = await edits.add(self.store, job_id, f"edit:{item.id}", [item], events)
        self.publish(committed)
        now = _item_of(committed)
        self._send(job_id, now)
        return now

    async def delete(self, job_id: str, item_id: str, author: str, *, in_ado: bool) -> dict[str, Any]:
        """The subtree leaves the backlog; with ``in_ado`` its uploaded work items are closed or
        removed as ``azure_devops.delete_action`` says (the outcome per work item is returned)."""
        _, rows, row = await self._row(job_id, item_id)
        if any(r.state == ItemState.IN_FLIGHT for r in [row, *_below(rows, item_id)]):
            raise ItemStateError(
                "upload_in_flight",
                f"{row.kind} {item_id} or an item under it is being uploaded; try again shortly",
            )
        retired: list[dict[str, Any]] = []

        def events(gone: list[ItemRow]) -> list[NewEvent]:
            removed = [r.id for r in gone]
            return [edit_event("deleted", None, author, item_id=item_id, removed=removed, in_ado=in_ado)]

        committed = await edits.remove(self.store, job_id, item_id, events)
        removed = committed[0].payload["removed"] if committed else []
        if in_ado:
            retired = await self._retire(job_id, [r for r in rows if r.id in set(removed)])
        self.publish(committed)
        return {"removed": removed, "azure_devops": retired}

    async def _retire(self, job_id: str, gone: list[ItemRow]) -> list[dict[str, Any]]:
        wanted = [
            r
            for r in gone
            if r.ado_id is not None and r.kind not in (ItemKind.TEST_PLAN, ItemKind.TEST_SUITE)
        ]
        client = await self.uploads.ado_client(job_id) if self.uploads is not None and wanted else None
        out: list[dict[str, Any]] = []
        for row in sorted(wanted, key=lambda r: -r.level):  # children first
            assert row.ado_id is not None
            if client is None:
                out.append({"ado_id": row.ado_id, "done": None, "error": "no Azure DevOps credentials"})
                continue
            try:
                done = await client.retire(row.ado_id, self.delete_action)
                out.append({"ado_id": row.ado_id, "done": done, "error": None})
            except AdoError as exc:
                out.append({"ado_id": row.ado_id, "done": None, "error": str(exc)[:300]})
        return out


def _below(rows: list[ItemRow], root: str) -> list[ItemRow]:
    """Everything under ``root`` or depending on what is (rows come parents first)."""
    found = {root}
    for r in rows:
        if r.parent_id in found or any(d in found for d in r.depends_on):
            found.add(r.id)
    return [r for r in rows if r.id in found and r.id != root]


def _item_of(committed: list[EventRow]) -> dict[str, Any]:
    """The item as the edit's event shows it, as it was committed (no second read)."""
    item: dict[str, Any] = committed[-1].payload["item"]
    return item


def _theirs(row: ItemRow) -> dict[str, Any]:
    return dict((row.conflict or {}).get("theirs") or {})


def _required(kind: str) -> list[str]:
    model = OUT_MODELS[kind]
    return [
        name
        for name, f in model.model_fields.items()
        if f.is_required() and name not in ("title", "description", "sources")
    ]
