"""Errors of the composition root.

ServiceError
├── SettingsError     the settings file or an override is invalid (CLI exit code 2)
├── JobNotFound       no job with that id
└── JobStateError     the job cannot do that now (e.g. upload a job that is still generating)
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
