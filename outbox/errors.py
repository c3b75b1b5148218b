"""Errors of the store (the ADO client's are in ``outbox/ado/errors.py``).

StoreError
└── VisionTaken   a job of the same vision key already holds a backlog (found in the insert's transaction)
"""

from __future__ import annotations


class StoreError(Exception):
    """Base of the store's refusals."""


class VisionTaken(StoreError):
    """The insert was refused: job ``job_id`` has the same vision key and holds a backlog."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id} already has this vision key")
        self.job_id = job_id
