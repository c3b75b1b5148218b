"""Rows of the store as frozen models: what the store returns and accepts. No I/O here."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from vocab import CallStatus, ItemKind, ItemState, JobStatus
from vocab.options import JobOptions
from vocab.vision import Vision

ITEM_STATES: tuple[ItemState, ...] = tuple(ItemState)


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True)


class JobRow(_Row):
    id: str
    status: JobStatus
    vision: Vision
    options: JobOptions
    metadata: dict[str, Any]
    error: str | None
    last_seq: int
    created_at: float
    updated_at: float
    finished_at: float | None

    @classmethod
    def from_db(cls, r: Any) -> JobRow:
        return cls(
            id=r["id"],
            status=r["status"],
            vision=Vision.model_validate_json(r["vision"]),
            options=JobOptions.model_validate_json(r["options"]),
            metadata=json.loads(r["metadata"]),
            error=r["error"],
            last_seq=r["last_seq"],
            created_at=r["created_at"],
            updated_at=r["updated_at"],
            finished_at=r["finished_at"],
        )


def job_columns(vision: Vision, options: JobOptions, metadata: dict[str, Any]) -> tuple[str, str, str]:
    """A new job's JSON columns, written the way they always were (``json.dumps`` of each dump)."""
    return (
        json.dumps(vision.model_dump(mode="json")),
        json.dumps(options.model_dump(mode="json")),
        json.dumps(metadata),
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
        )
