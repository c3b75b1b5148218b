"""Errors of the composition root.

ServiceError
├── SettingsError     the settings file or an override is invalid (CLI exit code 2)
├── JobNotFound       no job with that id (``field``: where the request named it)
├── BacklogExists     an earlier job already uploads this vision to this target (409 backlog_exists)
├── JobStateError     the job cannot do that now (e.g. upload a job that is still generating)
├── TargetRefused     the job names an upload target the settings do not allow (400, names the field)
├── QueueFull         server.max_queued_jobs jobs are already waiting (429)
├── InvalidInput      an edit or upload request names something wrong (400, details name the field)
├── ItemNotFound      no item with that id in that job (404)
├── ItemStateError    the item cannot do that now (409 with its own code, e.g. children_uploaded)
└── EditConflict      the work item changed in Azure DevOps since our upload (409, ours and theirs)
"""

from __future__ import annotations

from typing import Any


class ServiceError(Exception):
    """Base of the service package's errors."""


class SettingsError(ServiceError):
    """The settings are invalid; the message names the key and the file or variable."""


class JobNotFound(ServiceError):
    def __init__(self, job_id: str, field: str = "id") -> None:
        super().__init__(f"no job with id {job_id!r}")
        self.job_id = job_id
        self.field = field


class BacklogExists(ServiceError):
    """A job for the same vision and target exists: a new one must say ``update_of`` or ``new_copy``."""

    def __init__(self, job_id: str) -> None:
        super().__init__(
            f"job {job_id} already made a backlog of this vision for this target: send"
            f' "update_of": "{job_id}" to update it, or "new_copy": true for a second copy'
        )
        self.job_id = job_id


class JobStateError(ServiceError):
    """The job's state does not allow the requested action."""


class TargetRefused(ServiceError):
    """The job's upload target is not one the operator allows; ``field`` is the request field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class QueueFull(ServiceError):
    """Admission refused: ``limit`` jobs are already queued (checked in the insert's transaction)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"{limit} jobs are already waiting to run; retry later")
        self.limit = limit


class InvalidInput(ServiceError):
    """A request the service refuses on its merits; ``details`` name each field (``field``, ``message``)."""

    def __init__(self, message: str, details: list[dict[str, Any]]) -> None:
        super().__init__(message)
        self.details = details


class ItemNotFound(ServiceError):
    def __init__(self, job_id: str, item_id: str) -> None:
        super().__init__(f"job {job_id!r} has no item {item_id!r}")
        self.item_id = item_id


class ItemStateError(ServiceError):
    """The item's state does not allow it (``code`` says why, e.g. ``children_uploaded``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class EditConflict(ServiceError):
    """Someone changed the work item in Azure DevOps since we wrote it: nothing was overwritten."""

    def __init__(self, message: str, ours: dict[str, Any], theirs: dict[str, Any]) -> None:
        super().__init__(message)
        self.ours = ours
        self.theirs = theirs
