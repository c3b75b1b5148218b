"""Errors of the composition root.

ServiceError
├── SettingsError     the settings file or an override is invalid (CLI exit code 2)
├── JobNotFound       no job with that id
├── JobStateError     the job cannot do that now (e.g. upload a job that is still generating)
├── TargetRefused     the job names an upload target the settings do not allow (400, names the field)
└── QueueFull         server.max_queued_jobs jobs are already waiting (429)
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base of the service package's errors."""


class SettingsError(ServiceError):
    """The settings are invalid; the message names the key and the file or variable."""


class JobNotFound(ServiceError):
    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job with id {job_id!r}")
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
