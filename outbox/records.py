"""Rows of the store as frozen models: what the store returns and accepts. No I/O here."""

from __future__ import annotations

import json
from typing import Any, ClassVar, Self

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from vocab import CallStatus, ItemKind, ItemState, JobStatus
from vocab.options import JobOptions
from vocab.vision import Vision

ITEM_STATES: tuple[ItemState, ...] = tuple(ItemState)
MATCH_CALL_KEY = "rerun:match"  # the call key of rows a re-run copies in (the previous job's vanished items)


class _Row(BaseModel):
    model_config = ConfigDict(frozen=True)
    _json_columns: ClassVar[tuple[str, ...]] = ()  # stored as JSON text
    _nullable_json: ClassVar[tuple[str, ...]] = ()  # JSON text or NULL

    @classmethod
    def from_db(cls, r: Any) -> Self:
        """A row of either database (a mapping of its columns): JSON columns decoded, then validated
        (columns the model does not name, like a job's lease, are left out)."""
        data = dict(r)
        for name in cls._json_columns:
            data[name] = json.loads(data[name])
        for name in cls._nullable_json:
            data[name] = json.loads(data[name]) if data.get(name) else None
        return cls.model_validate(data)


class JobRow(_Row):
    _json_columns = ("vision", "options", "metadata")
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
    vision_key: str | None = None  # the normalised vision and target, hashed (re-runs find it by this)


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

    def values(self, now: float) -> tuple[Any, ...]:
        """Its ``llm_calls`` columns in insert order (job_id … error, created_at), for either database."""
        return (
            self.job_id,
            self.call_key,
            self.stage,
            self.parent_id,
            str(self.status),
            self.prompt_hash,
            self.attempts,
            self.prompt_tokens,
            self.completion_tokens,
            self.latency_ms,
            self.error,
            now,
        )


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

    def values(self, job_id: str, now: float) -> tuple[Any, ...]:
        """The match update's parameters (match, state, ado fields, written, updated_at, id, job_id)."""
        return (
            self.match,
            None if self.state is None else str(self.state),
            self.ado_id,
            self.ado_url,
            self.ado_rev,
            None if self.ado_extra is None else json.dumps(self.ado_extra),
            None if self.written is None else json.dumps(self.written),
            now,
            self.id,
            job_id,
        )


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
    _json_columns = ("depends_on", "body", "ado_extra")
    _nullable_json = ("written", "conflict")
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
    # a re-run's match to the previous job: unchanged updated new vanished (column match_kind)
    match: str | None = Field(default=None, validation_alias=AliasChoices("match", "match_kind"))
