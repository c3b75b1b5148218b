"""Work item links: full-URL targets, one parent, no cycles, and the reciprocal end the service adds."""

from __future__ import annotations

import re
from typing import Any

from emulator.errors import AdoError
from emulator.state import EmulatorState, Relation, WorkItem

PARENT = "System.LinkTypes.Hierarchy-Reverse"
CHILD = "System.LinkTypes.Hierarchy-Forward"
TESTS = "Microsoft.VSTS.Common.TestedBy-Reverse"
TESTED_BY = "Microsoft.VSTS.Common.TestedBy-Forward"
LINK_TYPES: dict[str, tuple[str, str]] = {  # rel -> (display name, reciprocal rel)
    PARENT: ("Parent", CHILD),
    CHILD: ("Child", PARENT),
    TESTS: ("Tests", TESTED_BY),
    TESTED_BY: ("Tested By", TESTS),
    "System.LinkTypes.Related": ("Related", "System.LinkTypes.Related"),
    "System.LinkTypes.Dependency-Forward": ("Successor", "System.LinkTypes.Dependency-Reverse"),
    "System.LinkTypes.Dependency-Reverse": ("Predecessor", "System.LinkTypes.Dependency-Forward"),
}
_CANONICAL = {rel.casefold(): rel for rel in LINK_TYPES}


def parse_relation(state: EmulatorState, value: Any) -> Relation:
    """Validate an `/relations/-` value: known rel, full work item URL of this org, existing target."""
    if not isinstance(value, dict) or not isinstance(value.get("rel"), str):
        raise AdoError(400, "InvalidArgumentValueException", "A relation needs 'rel' and 'url'.")
    rel = _CANONICAL.get(value["rel"].casefold())
    if rel is None:
        raise AdoError(
            400,
            "WorkItemLinkTypeNotFoundException",
            f"TF201063: The link type {value['rel']} does not exist.",
        )
    target = _target_id(state, value.get("url"))
    if target not in state.items:
        raise AdoError(
            400,
            "WorkItemLinkTargetNotFoundException",
            f"TF401232: Work item {target} does not exist, or you do not have permissions to read it.",
        )
    attributes = value.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise AdoError(400, "InvalidArgumentValueException", "Relation attributes must be an object.")
    return Relation(rel, target, {k: v for k, v in attributes.items() if k == "comment"})


def _target_id(state: EmulatorState, url: Any) -> int:
    org = re.escape(state.config.organization)
    pattern = rf"https?://[^/]+/{org}(?:/[^/]+)?/_apis/wit/workItems/(\d+)"
    found = re.fullmatch(pattern, url, re.IGNORECASE) if isinstance(url, str) else None
    if found is None:
        raise AdoError(
            400,
            "WorkItemLinkInvalidUrlException",
            f"Linking to a work item requires the full url. Got: {url}",
        )
    return int(found.group(1))


def check_relations(
    state: EmulatorState, item_id: int | None, current: list[Relation], new: list[Relation]
) -> None:
    """Reject duplicates, self links, a second parent and hierarchy cycles before anything is saved."""
    seen = {(r.rel, r.target) for r in current}
    parents = [r.target for r in current if r.rel == PARENT]
    for relation in new:
        if relation.target == item_id:
            raise AdoError(400, "WorkItemLinkInvalidException", "A work item cannot be linked to itself.")
        if (relation.rel, relation.target) in seen:
            raise AdoError(400, "WorkItemLinkAlreadyExistsException", "Relation already exists.")
        seen.add((relation.rel, relation.target))
        if relation.rel == PARENT:
            parents.append(relation.target)
        if relation.rel == CHILD:
            _check_new_child(state, item_id, relation.target)
    if len(parents) > 1:
        raise _extra_parent(item_id, parents[-1])
    if item_id is not None and parents and _is_ancestor(state, item_id, parents[0]):
        raise _cycle(item_id, parents[0])


def _check_new_child(state: EmulatorState, item_id: int | None, child_id: int) -> None:
    child = state.items[child_id]
    if child.parent_id is not None:
        raise _extra_parent(child_id, item_id or -1)
    if item_id is not None and _is_ancestor(state, child_id, item_id):
        raise _cycle(item_id, child_id)


def _is_ancestor(state: EmulatorState, ancestor: int, item_id: int) -> bool:
    """True when `ancestor` is `item_id` or above it in the hierarchy."""
    seen: set[int] = set()
    current: int | None = item_id
    while current is not None and current not in seen:
        if current == ancestor:
            return True
        seen.add(current)
        node = state.items.get(current)
        current = node.parent_id if node else None
    return False


def _extra_parent(child: int | None, parent: int) -> AdoError:
    return AdoError(
        400,
        "WorkItemLinkAddExtraParentException",
        f"TF201036: You cannot add a Child link between work items {parent} and {child} because a work item "
        "can have only one Parent link.",
    )


def _cycle(item: int, other: int) -> AdoError:
    return AdoError(
        400,
        "WorkItemLinkCircularException",
        f"TF201035: Circular relationship. The link between work items {item} and {other} "
        "would create a cycle.",
    )


def attach(state: EmulatorState, item: WorkItem, relation: Relation) -> None:
    """Store the link on both ends, named as the service names them, and keep System.Parent in step."""
    name, reverse = LINK_TYPES[relation.rel]
    item.relations.append(
        Relation(relation.rel, relation.target, {"isLocked": False, **relation.attributes, "name": name})
    )
    target = state.items[relation.target]
    target.relations.append(Relation(reverse, item.id, {"isLocked": False, "name": LINK_TYPES[reverse][0]}))
    if relation.rel == PARENT:
        item.fields["System.Parent"] = target.id
    elif relation.rel == CHILD:
        target.fields["System.Parent"] = item.id


def detach(state: EmulatorState, item: WorkItem, relation: Relation) -> None:
    item.relations.remove(relation)
    reverse = LINK_TYPES[relation.rel][1]
    target = state.items.get(relation.target)
    if target is not None:
        target.relations = [r for r in target.relations if not (r.rel == reverse and r.target == item.id)]
    if relation.rel == PARENT:
        item.fields.pop("System.Parent", None)
    elif relation.rel == CHILD and target is not None:
        target.fields.pop("System.Parent", None)


def ensure_link(state: EmulatorState, item: WorkItem, rel: str, target_id: int) -> None:
    if not any(r.rel == rel and r.target == target_id for r in item.relations):
        attach(state, item, Relation(rel, target_id))
