"""Views of a job for the API: its progress snapshot and its backlog tree (``web.schemas`` models).

Reads only; the store is the truth for status and counts, the job manager's live ``Progress`` (when
this process runs the job) for the percentage, current action and ETA.
"""

from __future__ import annotations

import time
from typing import Any

from outbox.records import JobRow
from service.composition import Services
from service.export import item_view, sentence_coverage, tree
from service.progress import COUNTED_KINDS, action_of
from vocab import FAILED_ITEM_STATES, KINDS, TERMINAL_JOB_STATES, ItemKind, ItemState
from web.schemas import Backlog, ProgressSnapshot, job_title
from web.sse import etag_of


def per_kind(counts: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Item counts per kind: generated (any state), uploaded, failed (dead or blocked)."""
    return {
        kind: {
            "generated": sum(counts.get(kind, {}).values()),
            "uploaded": counts.get(kind, {}).get(ItemState.UPLOADED, 0),
            "failed": sum(counts.get(kind, {}).get(s, 0) for s in FAILED_ITEM_STATES),
        }
        for kind in COUNTED_KINDS
    }


async def progress_snapshot(services: Services, job: JobRow) -> ProgressSnapshot:
    live = services.jobs.progress(job.id)
    if live is not None:
        snap = live.snapshot(time.monotonic(), time.time())
    else:
        snap = await _last_progress(services, job) or {
            "progress": 0.0,
            "current_action": "",
            "current_agent": "",
        }
    counts = per_kind(await services.store.item_counts(job.id))
    terminal = job.status in TERMINAL_JOB_STATES
    return ProgressSnapshot.model_validate(
        {
            **snap,
            "job_id": job.id,
            "status": job.status,
            "progress": 100.0 if terminal else float(snap.get("progress", 0.0)),
            "current_action": snap.get("current_action") or action_of(job.status),
            "current_agent": snap.get("current_agent", ""),
            "counts": counts,
            "eta_seconds": 0.0 if terminal else snap.get("eta_seconds"),
            "timestamp": time.time(),
            "error": job.error,
            "last_event_id": job.last_seq,
            "etag": etag_of(job.last_seq),
        }
    )


async def _last_progress(services: Services, job: JobRow) -> dict[str, Any] | None:
    """The latest progress snapshot in the job's recent events (a job this process is not running)."""
    events = await services.store.events_after(job.id, max(0, job.last_seq - 500), limit=500)
    for ev in reversed(events):
        if ev.type == "progress":
            return dict(ev.payload)
        if ev.type == "final" and isinstance(ev.payload.get("progress"), dict):
            return dict(ev.payload["progress"])
    return None


async def backlog_view(services: Services, job: JobRow) -> Backlog:
    """The tree (epics → features → stories → tasks/test cases) with each item's upload state."""
    items = await services.store.items(job.id)
    qa = [item_view(it) for it in items if it.kind in (ItemKind.TEST_PLAN, ItemKind.TEST_SUITE)]
    return Backlog.model_validate(
        {
            "job_id": job.id,
            "title": job_title(job),
            "status": job.status,
            "last_seq": job.last_seq,
            **tree(items),
            KINDS[ItemKind.TEST_PLAN].plural: qa,
            "sentences": sentence_coverage([s.model_dump() for s in job.vision.sentences], items),
            "counts": per_kind(await services.store.item_counts(job.id)),
        }
    )
