"""Rows of the store as frozen models: what the store returns and accepts. No I/O here."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from vocab import CallStatus, ItemKind, ItemState, JobStatus

ITEM_STATES: tuple[ItemState, ...] = tuple(ItemState)
MATCH_CALL_KEY = "rerun:match"  # the call key of rows a re-run copies in (the previous job's vanished items)


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True)


class JobRow(_Row):
    id: str
    status: JobStatus
    vision: dict[str, Any]
    options: dict[str, Any]
    metadata: dict[str, Any]
    error: str | None
    last_seq: int
    created_at: float
    updated_at: float
    finished_at: float | None
    vision_key: str | None = None  # the normalised vision and target, hashed (re-runs find it by this)

    @classmethod
    def from_db(cls, r: Any) -> JobRow:
        return cls(
            id=r["id"],
            status=r["status"],
            vision=json.loads(r["vision"]),
            options=json.loads(r["options"]),
            metadata=json.loads(r["metadata"]),
            error=r["error"],
            last_seq=r["last_seq"],
            created_at=r["created_at"],
            updated_at=r["updated_at"],
            finished_at=r["finished_at"],
            vision_key=r["vision_key"],
        )


class EventRow(_Row):
    job_id: str
    seq: int
    type: str
    payload: dict[str, Any]
    created_at: float


class NewEvent(_Row):
    type: str
    payload: dict[str, Any]


class CallRow(_Row):
    job_id: str
    call_key: str
    stage: str
    parent_id: str | None
    status: CallStatus
    prompt_hash: str
    attempts: int
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0
    error: str | None = None


class ItemMatch(_Row):
    """A re-run item's match to the previous job's, and what it takes over of that job's work item
    (``state`` None: keep the state; the ado fields None: keep them)."""

    id: str
    match: str
    state: ItemState | None = None
    ado_id: int | None = None
    ado_url: str | None = None
    ado_rev: int | None = None
    ado_extra: dict[str, int] | None = None
    written: dict[str, Any] | None = None  # the fields as last written to that work item


class NewItem(_Row):
    id: str
    parent_id: str | None
    depends_on: tuple[str, ...] = ()
    kind: ItemKind
    level: int
    position: int
    title: str
    body: dict[str, Any]
    state: ItemState = ItemState.HELD


class ItemRow(_Row):
    id: str
    job_id: str
    parent_id: str | None
    depends_on: tuple[str, ...]
    kind: ItemKind
    level: int
    position: int
    title: str
    body: dict[str, Any]
    call_key: str
    state: ItemState
    attempts: int
    lease_owner: str | None
    lease_until: float | None
    fence: int
    next_attempt_at: float
    reconcile: bool
    ado_id: int | None
    ado_url: str | None
    ado_rev: int | None
    ado_extra: dict[str, int]
    error: str | None
    written: dict[str, Any] | None = None  # the owned ADO fields as we last wrote them
    conflict: dict[str, Any] | None = None  # {"ours", "theirs"} while the item is in conflict
    dirty: bool = False  # edited while in flight: the upload's success becomes an update
    match: str | None = None  # a re-run's match to the previous job: unchanged updated new vanished

    @classmethod
    def from_db(cls, r: Any) -> ItemRow:
        return cls(
            id=r["id"],
            job_id=r["job_id"],
            parent_id=r["parent_id"],
            depends_on=tuple(json.loads(r["depends_on"])),
            kind=r["kind"],
            level=r["level"],
            position=r["position"],
            title=r["title"],
            body=json.loads(r["body"]),
            call_key=r["call_key"],
            state=r["state"],
            attempts=r["attempts"],
            lease_owner=r["lease_owner"],
            lease_until=r["lease_until"],
            fence=r["fence"],
            next_attempt_at=r["next_attempt_at"],
            reconcile=bool(r["reconcile"]),
            ado_id=r["ado_id"],
            ado_url=r["ado_url"],
            ado_rev=r["ado_rev"],
            ado_extra=json.loads(r["ado_extra"]),
            error=r["error"],
            written=_json_or_none(r["written"]),
            conflict=_json_or_none(r["conflict"]),
            dirty=bool(r["dirty"]),
            match=r["match_kind"],
        )


def _json_or_none(raw: str | None) -> Any:
    return json.loads(raw) if raw else None
