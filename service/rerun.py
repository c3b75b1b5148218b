"""Re-running a vision without a second copy: the vision key that finds an earlier backlog of the same
vision and target, the checks on ``update_of``, and taking over the previous job's work items once the
re-run has generated (the matching itself is ``service/matching.py``).

A re-run generates every item held, so nothing reaches Azure DevOps before it is matched. Then, in one
transaction: ``unchanged`` items take over their work item and are uploaded at once (no request);
``updated`` ones take it over and stay held, so their upload is an update of that work item (a PATCH
tested against the revision we wrote, never a create); ``new`` ones are created under their matched
parent's work item; previous work items nothing matched are copied in as ``vanished`` rows, uploaded
already, listed for the user to close (``DELETE …?in_ado=true``), never uploaded again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from concurrent.futures import Executor
from typing import Any

from outbox.backend import StoreBackend
from outbox.records import EventRow, ItemMatch, ItemRow, JobRow, NewEvent, NewItem
from service.errors import BacklogExists, InvalidInput, JobNotFound
from service.items import ID_NAMESPACE
from service.matching import Match, Matching, Node, match, normal
from service.org_urls import normal_org_url
from service.requests import JobRequest
from vocab import ItemState, JobStatus
from vocab.options import JobOptions
from vocab.vision import Vision

# An earlier job of these states holds no backlog worth protecting: a new copy is not a second one.
NO_BACKLOG = (JobStatus.FAILED, JobStatus.CANCELLED)
# A job whose generation has finished can be the base of a re-run.
GENERATED = (
    JobStatus.AWAITING_UPLOAD,
    JobStatus.AWAITING_REVIEW,
    JobStatus.NEEDS_CREDENTIALS,
    JobStatus.COMPLETED,
    JobStatus.COMPLETED_WITH_ERRORS,
)


def _target(options: JobOptions) -> list[str]:
    org = options.organization_url
    return [options.target, normal_org_url(org) if org else "", normal(options.project)]


def vision_key(vision: Vision, options: JobOptions) -> str | None:
    """The vision's content (title and sentences, case and spacing folded) and the upload target,
    hashed; None for a job that uploads nowhere (no copy to protect)."""
    if not options.uploading:
        return None
    content = [normal(vision.title), [normal(s.text) for s in vision.sentences]]
    raw = json.dumps([content, _target(options)], ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()


def guards_copies(request: JobRequest) -> bool:
    """Whether the request must not be a second copy: it neither updates a job nor asks for a copy."""
    return request.update_of is None and not request.new_copy


async def admit(store: StoreBackend, request: JobRequest, options: JobOptions, key: str | None) -> None:
    """Refuse a second copy nobody asked for, and an ``update_of`` that cannot be updated."""
    if request.update_of is not None and request.new_copy:
        raise _invalid("update_of and new_copy exclude each other: update the backlog or make a new copy")
    if request.update_of is not None:
        await _check_previous(store, request.update_of, options)
    elif not request.new_copy and key is not None:
        earlier = await store.latest_with_key(key, NO_BACKLOG)
        if earlier is not None:
            raise BacklogExists(earlier.id)


async def _check_previous(store: StoreBackend, job_id: str, options: JobOptions) -> None:
    previous = await store.get_job(job_id)
    if previous is None:
        raise JobNotFound(job_id, field="update_of")
    if previous.status not in GENERATED:
        raise _invalid(
            f"job {job_id} is {previous.status}: only a job that finished generating can be updated"
        )
    if not options.uploading:
        raise _invalid("this job uploads nowhere (target none): there is no work item to update")
    if _target(previous.options) != _target(options):
        raise _invalid(f"job {job_id} uploaded to another organization or project than this job would")


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message, [{"field": "update_of", "message": message}])


def _node(row: ItemRow) -> Node:
    return Node(row.id, row.parent_id, row.kind, row.title, row.body, row.position)


def _sentences(job: JobRow) -> dict[str, str]:
    return {s.id: s.text for s in job.vision.sentences}


async def take_over(
    store: StoreBackend, pool: Executor | None, job: JobRow, previous: JobRow
) -> list[EventRow]:
    """Match the re-run's items to the previous job's and commit what each takes over (once: a resumed
    job whose matching was committed finds its labels and does nothing)."""
    mine, theirs = await store.items(job.id), await store.items(previous.id)
    if any(r.match is not None for r in mine):
        return []
    loop = asyncio.get_running_loop()
    result = await loop.run_in_executor(
        pool,
        match,
        [_node(r) for r in mine],
        [_node(r) for r in theirs],
        _sentences(job),
        _sentences(previous),
    )
    old = {r.id: r for r in theirs}
    matches = [
        _taken(row.id, result.labels[row.id], old.get(result.previous.get(row.id, ""))) for row in mine
    ]
    added = _vanished_rows(job.id, result, old)
    matches += [_taken(copied.id, Match.VANISHED, old[old_id]) for old_id, copied in added]
    rows = [copied for _, copied in added]
    events = _events(mine, matches, rows)
    return await store.apply_matches(job.id, matches, rows, events)


def _taken(item_id: str, label: Match, prev: ItemRow | None) -> ItemMatch:
    """An unchanged item is its work item already; an updated one stays held until its update; a
    vanished one keeps the work item it was (inserted uploaded)."""
    if prev is None or prev.ado_id is None:  # never uploaded: nothing to take over, created as new
        return ItemMatch(id=item_id, match=label)
    return ItemMatch(
        id=item_id,
        match=label,
        state=ItemState.UPLOADED if label == Match.UNCHANGED else None,
        ado_id=prev.ado_id,
        ado_url=prev.ado_url,
        ado_rev=prev.ado_rev,
        ado_extra=dict(prev.ado_extra),
        written=prev.written,
    )


def vanished_id(job_id: str, old_id: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"{job_id}/vanished/{old_id}"))


def _vanished_rows(job_id: str, result: Matching, old: dict[str, ItemRow]) -> list[tuple[str, NewItem]]:
    """The previous job's work items nothing matched, as rows of this job under their (matched or
    copied) parents; an item that never reached Azure DevOps has nothing to close and is left out."""
    new_of = {prev: new for new, prev in result.previous.items()}
    rows: list[tuple[str, NewItem]] = []
    for old_id in result.vanished:
        row = old[old_id]
        if row.ado_id is None:
            continue
        copied = vanished_id(job_id, old_id)
        new_of[old_id] = copied
        rows.append(
            (
                old_id,
                NewItem(
                    id=copied,
                    parent_id=new_of.get(row.parent_id) if row.parent_id else None,
                    depends_on=tuple(new_of[d] for d in row.depends_on if d in new_of),
                    kind=row.kind,
                    level=row.level,
                    position=row.position,
                    title=row.title,
                    body=row.body,
                    state=ItemState.UPLOADED,
                ),
            )
        )
    return rows


def _events(mine: list[ItemRow], matches: list[ItemMatch], added: list[NewItem]) -> list[NewEvent]:
    """An ``item`` event with its ``match`` for every item, and an ``upload`` event for each that is
    uploaded at once (unchanged, vanished)."""
    rows = {r.id: r for r in mine}
    out: list[NewEvent] = []
    labelled = [(rows[m.id], m) for m in matches if m.id in rows]
    for it, m in labelled:
        out.append(_item_event(it.id, it.kind, it.title, it.parent_id, it.body, m.match))
    for row in added:
        out.append(_item_event(row.id, row.kind, row.title, row.parent_id, row.body, Match.VANISHED))
    for it, m in labelled:
        if m.state == ItemState.UPLOADED:
            out.append(_upload_event(it.id, it.kind, it.title, m.ado_id, m.ado_url, m.ado_rev))
    return out


def _item_event(
    item_id: str, kind: str, title: str, parent_id: str | None, body: dict[str, Any], label: str
) -> NewEvent:
    payload = {
        "id": item_id,
        "kind": kind,
        "title": title,
        "parent_id": parent_id,
        "sources": body.get("sources", []),
        "match": label,
    }
    return NewEvent(type="item", payload=payload)


def _upload_event(
    item_id: str, kind: str, title: str, ado_id: int | None, url: str | None, rev: int | None
) -> NewEvent:
    payload = {"id": item_id, "kind": kind, "title": title, "state": ItemState.UPLOADED}
    return NewEvent(type="upload", payload={**payload, "adoId": ado_id, "url": url, "rev": rev})
