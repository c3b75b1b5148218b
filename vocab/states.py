"""The states a job and an outbox item go through, and what uploading a job's items came to.

Job: ``queued → running → completed | completed_with_errors | failed | cancelled``, with
``awaiting_upload`` (manual upload mode), ``awaiting_review`` (review mode) and
``needs_credentials`` (no PAT) as resting states.
Item: ``held → pending → in_flight → uploaded``; failures go to ``retry_wait`` or ``dead``, and the
children of a dead item to ``blocked``. An uploaded item edited
again goes back to ``pending`` (an update of its work item) and to ``conflict`` when someone changed
the work item in Azure DevOps meanwhile. A committed LLM call is ``done`` or ``failed``.
"""

from __future__ import annotations

from enum import StrEnum


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    AWAITING_UPLOAD = "awaiting_upload"
    AWAITING_REVIEW = "awaiting_review"
    NEEDS_CREDENTIALS = "needs_credentials"
    COMPLETED = "completed"
    COMPLETED_WITH_ERRORS = "completed_with_errors"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_JOB_STATES: frozenset[JobStatus] = frozenset(
    {JobStatus.COMPLETED, JobStatus.COMPLETED_WITH_ERRORS, JobStatus.FAILED, JobStatus.CANCELLED}
)
OPEN_JOB_STATES: tuple[JobStatus, ...] = (JobStatus.QUEUED, JobStatus.RUNNING)  # a runner owns or will own it


class ItemState(StrEnum):
    HELD = "held"  # generated, not yet released to the uploader
    PENDING = "pending"
    IN_FLIGHT = "in_flight"  # leased by one relay
    UPLOADED = "uploaded"
    RETRY_WAIT = "retry_wait"
    DEAD = "dead"  # a permanent error or attempts exhausted
    BLOCKED = "blocked"  # under a dead item
    CONFLICT = "conflict"  # changed in Azure DevOps since our upload: the user chooses a version


FAILED_ITEM_STATES: tuple[ItemState, ...] = (ItemState.DEAD, ItemState.BLOCKED)


class CallStatus(StrEnum):
    """A committed LLM call: it produced its items, or it failed for good."""

    DONE = "done"
    FAILED = "failed"


class UploadOutcome(StrEnum):
    """What uploading all of a job's items came to."""

    UPLOADED = "uploaded"  # every item is in Azure DevOps
    ERRORS = "errors"  # some items are dead or blocked
    NEEDS_CREDENTIALS = "needs_credentials"  # no PAT to upload with
