"""Matching a re-run's backlog to the previous job's (``update_of``), so the re-run updates the work
items it already has instead of uploading a second copy. Pure: no I/O, no clock.

The trees are walked top-down and a child is only ever matched within its parent's match (an item
whose parent is new is new). Among siblings of one kind:

1. the same content key (kind, normalised title and every body field backlogd writes to Azure DevOps,
   sources included) → ``unchanged``: the work item already says exactly this;
2. otherwise the best pair by similarity, above ``THRESHOLD``: title similarity (difflib's ratio of
   the normalised titles) averaged with the Jaccard overlap of the source sentences' texts (ids differ
   between visions, the sentences' words do not) → ``updated``;
3. what is left: new items → ``new``, previous items → ``vanished``.

Test plans and suites hang off one feature or story each and carry nothing of their own (the title is
the owner's): they follow their owner and are ``unchanged`` whenever it matched.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from enum import StrEnum
from typing import Any

from vocab import ItemKind

THRESHOLD = 0.6
# The body fields ``outbox/ado/mapping.py`` writes; a difference in any is a difference in ADO.
WRITTEN_FIELDS = (
    "description",
    "user_story",
    "preconditions",
    "acceptance_criteria",
    "story_points",
    "priority",
    "business_value",
    "estimate_hours",
    "activity",
    "steps",
    "sources",
)
_FOLLOWERS = frozenset({ItemKind.TEST_PLAN, ItemKind.TEST_SUITE})


class Match(StrEnum):
    UNCHANGED = "unchanged"
    UPDATED = "updated"
    NEW = "new"
    VANISHED = "vanished"


@dataclass(frozen=True)
class Node:
    """An item as matching sees it."""

    id: str
    parent_id: str | None
    kind: str
    title: str
    body: Mapping[str, Any] = field(default_factory=dict)
    position: int = 0


@dataclass(frozen=True)
class Matching:
    """Each new item's label and the previous item it takes over; the previous items nothing matched."""

    labels: dict[str, Match]
    previous: dict[str, str]  # new id → previous id (unchanged and updated)
    vanished: list[str]  # previous ids, parents before children


def normal(text: str) -> str:
    return " ".join(str(text).casefold().split())


def _plain(value: Any) -> Any:
    """A body value compared by content: text normalised, lists and mappings element-wise."""
    if isinstance(value, str):
        return normal(value)
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in sorted(value.items())}
    return value


def content_key(node: Node) -> str:
    """What the work item says: equal keys, equal work items (followers: their kind alone)."""
    if node.kind in _FOLLOWERS:
        return node.kind
    written = {f: _plain(node.body[f]) for f in WRITTEN_FIELDS if f in node.body}
    return json.dumps([node.kind, normal(node.title), written], sort_keys=True, ensure_ascii=False)


def _sentence_words(node: Node, sentences: Mapping[str, str]) -> frozenset[str]:
    ids = node.body.get("sources") or []
    return frozenset(w for sid in ids for w in normal(sentences.get(str(sid), "")).split())


def similarity(
    new: Node, old: Node, new_sentences: Mapping[str, str], old_sentences: Mapping[str, str]
) -> float:
    """Title similarity, averaged with the source sentences' word overlap when both cite any."""
    title = SequenceMatcher(None, normal(new.title), normal(old.title), autojunk=False).ratio()
    a, b = _sentence_words(new, new_sentences), _sentence_words(old, old_sentences)
    if not a or not b:
        return title
    return (title + len(a & b) / len(a | b)) / 2


def _by_parent(nodes: Iterable[Node]) -> dict[str | None, list[Node]]:
    out: dict[str | None, list[Node]] = {}
    for n in nodes:
        out.setdefault(n.parent_id, []).append(n)
    for kids in out.values():
        kids.sort(key=lambda n: (n.kind, n.position, n.id))
    return out


def match(
    new: Iterable[Node],
    old: Iterable[Node],
    new_sentences: Mapping[str, str] | None = None,
    old_sentences: Mapping[str, str] | None = None,
    threshold: float = THRESHOLD,
) -> Matching:
    """Label every new item and list the previous items left over (see the module docstring)."""
    new, old = list(new), list(old)
    keys = {("n", n.id): content_key(n) for n in new} | {("o", o.id): content_key(o) for o in old}
    new_kids, old_kids = _by_parent(new), _by_parent(old)
    ns, os_ = new_sentences or {}, old_sentences or {}
    labels: dict[str, Match] = {}
    previous: dict[str, str] = {}
    vanished: list[str] = []
    # (new parent, previous parent): None for the roots; a new parent without a match has none
    queue: deque[tuple[str | None, str | None]] = deque([(None, None)])
    while queue:
        new_parent, old_parent = queue.popleft()
        mine = new_kids.get(new_parent, [])
        theirs = old_kids.get(old_parent, []) if (new_parent is None or old_parent is not None) else []
        pairs = _pair_siblings(mine, theirs, ns, os_, threshold, keys)
        taken = {o.id for o in pairs.values()}
        for n in mine:
            o = pairs.get(n.id)
            if o is None:
                labels[n.id] = Match.NEW
            else:
                previous[n.id] = o.id
                same = keys["n", n.id] == keys["o", o.id]
                labels[n.id] = Match.UNCHANGED if same else Match.UPDATED
            queue.append((n.id, o.id if o else None))
        for o in theirs:
            if o.id not in taken:
                vanished += _subtree(o, old_kids)
    return Matching(labels, previous, vanished)


def _pair_siblings(
    mine: list[Node],
    theirs: list[Node],
    ns: Mapping[str, str],
    os_: Mapping[str, str],
    threshold: float,
    keys: Mapping[tuple[str, str], str],
) -> dict[str, Node]:
    """new id → previous sibling: exact content keys first, then the most similar pairs above the
    threshold (highest first, ties in position order); each previous item is taken at most once."""
    pairs: dict[str, Node] = {}
    by_key: dict[str, list[Node]] = {}
    for o in theirs:
        by_key.setdefault(keys["o", o.id], []).append(o)
    for n in mine:
        same = by_key.get(keys["n", n.id])
        if same:
            pairs[n.id] = same.pop(0)
    taken = {o.id for o in pairs.values()}
    free = [o for o in theirs if o.id not in taken]
    scored = sorted(
        (
            (-similarity(n, o, ns, os_), i, j, n, o)
            for i, n in enumerate(mine)
            if n.id not in pairs
            for j, o in enumerate(free)
            if o.kind == n.kind
        ),
        key=lambda t: (t[0], t[1], t[2]),
    )
    used: set[str] = set()
    for score, _, _, n, o in scored:
        if -score < threshold:
            break
        if n.id not in pairs and o.id not in used:
            pairs[n.id] = o
            used.add(o.id)
    return pairs


def _subtree(root: Node, kids: Mapping[str | None, list[Node]]) -> list[str]:
    """The ids of ``root`` and everything under it, parents first."""
    out, todo = [], deque([root])
    while todo:
        node = todo.popleft()
        out.append(node.id)
        todo.extend(kids.get(node.id, []))
    return out
