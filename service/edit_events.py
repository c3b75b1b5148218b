"""The ``edit`` event: one per committed change of a job's backlog, the audit record every open page
applies. ``{"change", "item_id", "item" (as GET /backlog shows it, null when deleted), "removed",
"author", "at", "fields"}`` plus what the change adds (``before``/``after`` of an edit, …)."""

from __future__ import annotations

import time
from typing import Any

from outbox.records import ItemRow, NewEvent
from service.export import item_view

AZURE_DEVOPS = "azure-devops"  # the author of a conflict the uploader found


def edit_event(
    change: str,
    item: ItemRow | None,
    author: str,
    *,
    item_id: str,
    fields: list[str] | None = None,
    removed: list[str] | None = None,
    **audit: Any,
) -> NewEvent:
    payload = {
        "change": change,
        "item_id": item_id,
        "item": item_view(item) if item is not None else None,
        "removed": list(removed or []),
        "author": author,
        "at": time.time(),
        "fields": list(fields or []),
        **audit,
    }
    return NewEvent(type="edit", payload=payload)
