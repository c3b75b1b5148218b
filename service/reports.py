"""What a job's backlog tells once generated: traceability, the quality model, advice on a vision,
the one-line summary of what failed, and the tallies logged and stored with it. The CPU-bound parts
run in the process pool; nothing here changes a job.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterable
from concurrent.futures import Executor
from typing import Any

from outbox.backend import StoreBackend
from outbox.records import JobRow
from service.items import JobContext
from stages import advice, quality, scorecard
from stages.models import Item
from vocab import FAILED_ITEM_STATES, GENERATED_KINDS, ItemKind, ItemState
from vocab.vision import Vision

_NOT_UPLOADED = (*FAILED_ITEM_STATES, ItemState.HELD, ItemState.PENDING)  # what problems() counts as stuck


class JobReports:
    """Reads a job's items from the store and computes what is reported about them."""

    def __init__(self, store: StoreBackend, pool: Executor | None) -> None:
        self.store = store
        self._pool = pool

    async def traceability(self, job_id: str, vision: Vision) -> dict[str, Any]:
        stories = [i.body for i in await self.store.items(job_id) if i.kind == ItemKind.STORY]
        sentences = [s.model_dump() for s in vision.sentences]
        return quality.traceability(sentences, stories)

    async def quality(self, job_id: str, vision: Vision, coverage: dict[str, Any]) -> dict[str, Any]:
        """The backlog's quality model (``stages.scorecard``), computed in the process pool."""
        items = [
            {"id": i.id, "kind": i.kind, "title": i.title, "parent_id": i.parent_id, "body": i.body}
            for i in await self.store.items(job_id)
            if i.kind in GENERATED_KINDS
        ]
        loop = asyncio.get_running_loop()
        vision_data = vision.model_dump(mode="json")
        return await loop.run_in_executor(self._pool, scorecard.score_json, items, vision_data, coverage)

    async def advise(self, vision: Vision) -> list[dict[str, Any]]:
        """What the vision lacks (``stages.advice``), computed in the process pool."""
        return await asyncio.get_running_loop().run_in_executor(self._pool, advice.advise_json, vision)

    async def problems(self, job: JobRow) -> str:
        """One line for the job: how many calls and uploads failed, and the first reason."""
        failed_calls: dict[str, str] = job.metadata.get("failed_calls") or {}
        stuck = [i for i in await self.store.items(job.id) if i.state in _NOT_UPLOADED]
        parts = []
        if failed_calls:
            parts.append(
                f"{len(failed_calls)} generation calls failed ({next(iter(failed_calls.values()))[:160]})"
            )
        dead = [i for i in stuck if i.state == ItemState.DEAD]
        if stuck:
            first = (dead or stuck)[0]
            parts.append(
                f"{len(stuck)} items not uploaded ({len(dead)} dead; first: {first.kind} "
                f"'{first.title[:60]}': {(first.error or first.state)[:160]})"
            )
        return "; ".join(parts) or "completed with errors"


def by_kind(items: Iterable[Item]) -> dict[str, int]:
    """How many items of each kind (the kinds that have any), for the ``job_generated`` line."""
    counts = Counter(str(item.kind) for item in items)
    return {kind.value: counts[kind] for kind in ItemKind if counts[kind]}


def llm_tally(job: JobRow, ctx: JobContext) -> dict[str, Any]:
    """Requests sent and repairs made, added to what earlier runs of the job (before a restart) counted."""
    before: dict[str, Any] = job.metadata.get("llm") or {}
    repairs = dict(before.get("repairs") or {})
    for kind, n in ctx.repairs.items():
        repairs[kind] = repairs.get(kind, 0) + n
    return {"requests": int(before.get("requests") or 0) + ctx.llm_requests, "repairs": repairs}
