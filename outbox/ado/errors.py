"""Errors of the Azure DevOps client; retry data travels on the exception.

    AdoError(message, status=None, retry_after=None, created=None)
    ├── AdoTransient      nothing was written: 429, 5xx on a read, a connection that failed before the
    │   │                 request was sent; retry after ``retry_after``
    │   ├── AdoThrottled  429, or any failure carrying Retry-After: the whole identity pauses
    │   └── AdoConflict   a documented "try again" conflict (409 TF26071: changed by someone else) or a
    │                     node not yet usable right after its creation (TF401347): back off and retry
    ├── AdoAmbiguous      a write MAY have happened (any 5xx, timeout, reset or lost response after the
    │                     request was sent): reconcile by key before creating again
    └── AdoPermanent      retrying the same request cannot help (4xx rule errors; the service message with
        │                 its TF/VS code and field is kept)
        ├── AdoAuthError  401, 403, 203 sign-in page or a non-JSON 2xx: check the PAT and its scopes
        │   └── AdoForbidden  the PAT is fine but its user lacks a permission or an access level
        │                     (create area/iteration nodes, Basic + Test Plans); the message names it
        ├── AdoNotFound   404 (unknown project, type, work item, plan or suite)
        └── AdoRevisionConflict  an update's ``test /rev`` failed (412) and someone changed the fields
                          we own since our write: ``theirs`` holds their values; nothing was written

``created`` carries an ``Uploaded`` when a multi-step upload created the work item but a later step
failed, so the caller records the id and never creates it again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from outbox.ado.types import Uploaded


class AdoError(Exception):
    """Base of every error raised by the ADO client; never carries the PAT."""

    def __init__(
        self,
        message: str,
        status: int | None = None,
        retry_after: float | None = None,
        created: Uploaded | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after = retry_after
        self.created = created


class AdoTransient(AdoError):
    """Nothing was written; the same request may be sent again after ``retry_after`` (or a backoff)."""


class AdoThrottled(AdoTransient):
    """Blocked by rate limiting (429 or Retry-After): pause the whole identity until the deadline."""


class AdoConflict(AdoTransient):
    """A conflict the service documents as "try again" (TF26071, a node still propagating)."""


class AdoAmbiguous(AdoError):
    """The write may have been committed: look the item up by its key before any new create."""


class AdoPermanent(AdoError):
    """A request the service rejects on its merits; the message keeps the TF/VS code and field."""


class AdoAuthError(AdoPermanent):
    """The credentials were refused: check the PAT and its scopes."""


class AdoNotFound(AdoPermanent):
    """The project, work item type, work item, plan or suite does not exist (or is not visible)."""


class AdoForbidden(AdoAuthError):
    """Refused for want of a permission or access level, not because of the PAT; the message says which."""


class AdoRevisionConflict(AdoPermanent):
    """The work item changed in Azure DevOps since we wrote it; ``theirs`` is its owned fields now."""

    def __init__(self, message: str, theirs: dict[str, Any], fields: dict[str, Any]) -> None:
        super().__init__(message, 412)
        self.theirs = theirs
        self.fields = fields  # their owned fields as Azure DevOps has them (adopted on "keep theirs")
