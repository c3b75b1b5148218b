"""vocab: the words every layer shares — job status, item state, upload outcome, item kind.

It is the lowest layer: it imports nothing of the project, and stages, outbox, hardware, service and
web may all import it (stages and outbox never import each other, so the kind table cannot live in
either). Each term is a ``StrEnum``: a member equals its string value, so the database rows, the JSON
bodies and the SSE payloads carry exactly the strings they always did. The data a job is stored with
lives here too, as frozen models: ``vocab.options`` (its limits and options) and ``vocab.vision``.
"""

from vocab.kinds import GENERATED_KINDS, KINDS, ItemKind, KindInfo
from vocab.states import (
    FAILED_ITEM_STATES,
    OPEN_JOB_STATES,
    TERMINAL_JOB_STATES,
    CallStatus,
    ItemState,
    JobStatus,
    UploadOutcome,
)

__all__ = [
    "FAILED_ITEM_STATES",
    "GENERATED_KINDS",
    "KINDS",
    "OPEN_JOB_STATES",
    "TERMINAL_JOB_STATES",
    "CallStatus",
    "ItemKind",
    "ItemState",
    "JobStatus",
    "KindInfo",
    "UploadOutcome",
]
