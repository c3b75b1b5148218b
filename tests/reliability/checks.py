"""Compare what the service generated (``GET /api/jobs/{id}/backlog``) with what the emulator holds
(``GET /_emulator/state``): exactly one work item per generated item, each under the right parent,
one test plan per feature and one requirement suite per story holding that story's test cases."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from outbox.relay import idempotency_key
from service.items import derived_id

TESTED_BY_REVERSE = "Microsoft.VSTS.Common.TestedBy-Reverse"


@dataclass(frozen=True)
class Node:
    """A generated work item and its parent in the generated tree."""

    id: str
    kind: str
    ado_id: int | None
    state: str
    parent: Node | None


def nodes(backlog: dict[str, Any]) -> Iterator[Node]:
    """Every epic, feature, story, task and test case of a backlog tree, parents first."""

    def walk(raw: dict[str, Any], parent: Node | None) -> Iterator[Node]:
        upload = raw.get("upload") or {}
        node = Node(raw["id"], raw["type"], upload.get("ado_id"), upload.get("state", ""), parent)
        yield node
        for key in ("features", "stories", "tasks", "test_cases"):
            for child in raw.get(key, []):
                yield from walk(child, node)

    for epic in backlog.get("epics", []):
        yield from walk(epic, None)


def tree_problems(backlogs: list[dict[str, Any]], emulator: dict[str, Any]) -> list[str]:
    """Everything that differs between the generated trees and the emulator's state."""
    problems: list[str] = []
    items = {int(w["id"]): w for w in emulator["work_items"]}
    creates = emulator["creates_by_tag"]
    expected_keys: set[str] = set()
    for backlog in backlogs:
        job = backlog["job_id"]
        for node in nodes(backlog):
            key = idempotency_key(node.id)
            expected_keys.add(key)
            where = f"job {job} {node.kind} {node.id} ({key})"
            if creates.get(key, 0) != 1:
                problems.append(f"{where}: created {creates.get(key, 0)} times in the emulator")
            if node.state != "uploaded" or node.ado_id is None:
                problems.append(f"{where}: upload state {node.state!r}, ado id {node.ado_id}")
                continue
            problems += _placement(where, node, items.get(node.ado_id), key)
        problems += _test_plans(job, backlog, emulator)
    stray = sorted(
        tag for w in items.values() for tag in w["tags"] if tag.startswith("bk-") and tag not in expected_keys
    )
    if stray:
        problems.append(f"work items in the emulator that no job generated: {stray[:10]}")
    return problems


def _placement(where: str, node: Node, item: dict[str, Any] | None, key: str) -> list[str]:
    if item is None:
        return [f"{where}: ado id {node.ado_id} is not in the emulator"]
    out = [] if key in item["tags"] else [f"{where}: work item {item['id']} lacks its key tag"]
    want = node.parent.ado_id if node.parent else None
    if node.kind == "test_case":  # linked to its story with TestedBy, not as a hierarchy child
        targets = [r["target"] for r in item["relations"] if r["rel"] == TESTED_BY_REVERSE]
        if targets != [want]:
            out.append(f"{where}: tests {targets}, expected its story {want}")
    elif item["parent_id"] != want:
        out.append(f"{where}: parent {item['parent_id']} in the emulator, expected {want}")
    return out


def _test_plans(job: str, backlog: dict[str, Any], emulator: dict[str, Any]) -> list[str]:
    """A plan per feature and a requirement suite per story, holding exactly its test cases."""
    uploaded = {q["id"]: q["upload"] for q in backlog.get("test_plans", [])}
    plans = {int(p["id"]) for p in emulator["test_plans"]}
    suites = {int(s["id"]): s for s in emulator["suites"]}
    out: list[str] = []
    for node in nodes(backlog):
        if node.kind == "feature":
            plan = uploaded.get(derived_id(node.id, "test_plan"), {})
            if plan.get("state") != "uploaded" or plan.get("ado_id") not in plans:
                out.append(f"job {job} feature {node.id}: test plan {plan}")
        if node.kind != "story":
            continue
        suite_row = uploaded.get(derived_id(node.id, "test_suite"), {})
        suite = suites.get(suite_row.get("ado_id") or -1)
        cases = sorted(
            c.ado_id or 0
            for c in nodes(backlog)
            if c.kind == "test_case" and c.parent and c.parent.id == node.id
        )
        if suite is None or suite["requirement_id"] != node.ado_id:
            out.append(f"job {job} story {node.id}: suite {suite_row} not a requirement suite of it")
        elif sorted(suite["test_case_ids"]) != cases:
            out.append(f"job {job} story {node.id}: suite holds {suite['test_case_ids']}, expected {cases}")
    return out


def duplicate_plan_problems(backlogs: list[dict[str, Any]], emulator: dict[str, Any]) -> list[str]:
    """No plan or requirement suite exists twice: the emulator holds exactly the ones the jobs own."""
    owned_plans = {
        q["upload"]["ado_id"] for b in backlogs for q in b.get("test_plans", []) if q["type"] == "test_plan"
    }
    owned_suites = {
        q["upload"]["ado_id"] for b in backlogs for q in b.get("test_plans", []) if q["type"] == "test_suite"
    }
    plans = {int(p["id"]) for p in emulator["test_plans"]}
    requirement_suites = {int(s["id"]) for s in emulator["suites"] if s["requirement_id"] is not None}
    out = []
    if plans != owned_plans:
        out.append(
            f"test plans: emulator {sorted(plans - owned_plans)} extra, {sorted(owned_plans - plans)} missing"
        )
    if requirement_suites != owned_suites:
        extra, missing = requirement_suites - owned_suites, owned_suites - requirement_suites
        out.append(f"requirement suites: emulator {sorted(extra)} extra, {sorted(missing)} missing")
    return out
