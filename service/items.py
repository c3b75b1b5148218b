"""The job's backlog in memory while it generates, and how a call's answer becomes outbox rows.

Item ids are UUIDv5 of (job, call, position): a call that is re-run after a crash before it committed
produces the same ids, and derived items (a feature's test plan, a story's test suite) have ids
computed from their owner's, so a test case can name its suite before the suite exists.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from outbox.records import NewEvent, NewItem
from service.progress import Progress
from stages.definitions import STAGES, StageDef
from stages.models import Item
from vocab import KINDS, ItemKind, ItemState
from vocab.options import Limits
from vocab.vision import Vision

ID_NAMESPACE = uuid.UUID("7b0c55a2-54a4-4c59-9f5e-2f3d0b1c9a11")
LEVELS: dict[str, int] = {kind: info.level for kind, info in KINDS.items()}
STAGES_BY_KIND = {s.kind for s in STAGES.values()}


def derived_id(owner_id: str, kind: str) -> str:
    return str(uuid.uuid5(ID_NAMESPACE, f"{owner_id}/{kind}"))


@dataclass
class JobContext:
    job_id: str
    vision: Vision
    limits: Limits
    include_qa: bool
    item_state: ItemState
    progress: Progress
    items: dict[str, Item] = field(default_factory=dict)
    children: dict[str | None, list[Item]] = field(default_factory=dict)  # by parent id, in arrival order
    stories: list[Item] = field(default_factory=list)  # for the job-wide near-duplicate check
    failed_calls: dict[str, str] = field(default_factory=dict)
    started_stages: set[str] = field(default_factory=set)
    llm_requests: int = 0  # HTTP requests this run sent, throttled and failed ones included
    repairs: dict[str, int] = field(default_factory=dict)  # kind of repair -> count (see stages.repair)

    def note_repairs(self, repairs: list[str]) -> None:
        """Count each repair by its kind: the text after the field path, without the values."""
        for text in repairs:
            kind = repair_kind(text)
            self.repairs[kind] = self.repairs.get(kind, 0) + 1

    def add(self, item: Item) -> None:
        """Index a generated item: every call reads its parent chain and neighbours, so no scans."""
        self.items[item.id] = item
        self.children.setdefault(item.parent_id, []).append(item)
        if item.kind == ItemKind.STORY:
            self.stories.append(item)

    def chain(self, parent: Item | None) -> list[Item]:
        out: list[Item] = []
        while parent is not None:
            out.insert(0, parent)
            parent = self.items.get(parent.parent_id) if parent.parent_id else None
        return out

    def neighbours(self, parent: Item | None) -> list[str]:
        if parent is None:
            return []
        siblings = self.children.get(parent.parent_id, [])
        return [i.title for i in siblings if i.kind == parent.kind and i.id != parent.id]


def new_items(
    ctx: JobContext, stage: StageDef, parent: Item | None, key: str, bodies: list[dict[str, Any]]
) -> list[NewItem]:
    out: list[NewItem] = []
    for pos, body in enumerate(bodies):
        item_id = str(uuid.uuid5(ID_NAMESPACE, f"{ctx.job_id}/{key}/{pos}"))
        depends: tuple[str, ...] = ()
        if stage.kind == ItemKind.TEST_CASE and parent is not None:
            depends = (derived_id(parent.id, ItemKind.TEST_SUITE),)
        out.append(
            NewItem(
                id=item_id,
                parent_id=parent.id if parent else None,
                depends_on=depends,
                kind=stage.kind,
                level=LEVELS[stage.kind],
                position=pos,
                title=body["title"],
                body=body,
                state=ctx.item_state,
            )
        )
        if ctx.include_qa and stage.kind in (ItemKind.FEATURE, ItemKind.STORY):
            out.append(derived(ctx, stage.kind, item_id, body["title"], parent))
    return out


def derived(ctx: JobContext, kind: str, owner_id: str, title: str, parent: Item | None) -> NewItem:
    """The test plan of a feature, or the requirement-based test suite of a story."""
    if kind == ItemKind.FEATURE:
        return NewItem(
            id=derived_id(owner_id, ItemKind.TEST_PLAN),
            parent_id=owner_id,
            kind=ItemKind.TEST_PLAN,
            level=LEVELS[ItemKind.TEST_PLAN],
            position=0,
            title=f"Test plan: {title}"[:255],
            body={
                "title": f"Test plan: {title}"[:255],
                "description": f"Tests for the feature '{title}'.",
            },
            state=ctx.item_state,
        )
    assert parent is not None
    return NewItem(
        id=derived_id(owner_id, ItemKind.TEST_SUITE),
        parent_id=owner_id,
        depends_on=(derived_id(parent.id, ItemKind.TEST_PLAN),),
        kind=ItemKind.TEST_SUITE,
        level=LEVELS[ItemKind.TEST_SUITE],
        position=0,
        title=title,
        body={"title": title},
        state=ctx.item_state,
    )


def as_item(job_id: str, row: Any) -> Item:
    """A generated row (stored or new) as a domain Item."""
    return Item(
        id=row.id,
        job_id=job_id,
        parent_id=row.parent_id,
        kind=row.kind,
        position=row.position,
        title=row.title,
        body=row.body,
    )


def item_events(items: list[NewItem]) -> list[NewEvent]:
    return [
        NewEvent(
            type="item",
            payload={
                "id": it.id,
                "kind": it.kind,
                "title": it.title,
                "parent_id": it.parent_id,
                "sources": it.body.get("sources", []),
            },
        )
        for it in items
    ]


_REPAIR_KINDS = (
    ("dropped an item", "items_dropped"),
    ("inherited", "citations_inherited"),
    ("citation", "citations_dropped"),
    ("unknown field", "fields_dropped"),
    ("kept the first", "entries_dropped"),
    ("shortened", "text_shortened"),
    ("trimmed", "whitespace_trimmed"),
    ("clamped", "numbers_clamped"),
    ("nearest allowed", "numbers_clamped"),
    ("read as", "values_normalised"),
)


def repair_kind(text: str) -> str:
    """The counter a repair sentence from ``stages.repair``/``stages.answers`` adds to."""
    return next((kind for needle, kind in _REPAIR_KINDS if needle in text), "other")
