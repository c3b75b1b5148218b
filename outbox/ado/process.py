"""Process discovery (pure): which process a project uses and which of our kinds map to which type.

The type list is the authority (§8): User Story → Agile, Product Backlog Item → Scrum,
Requirement → CMMI, Issue without those → Basic.

Basic has only Epic, Issue and Task, and its boards show Epic → Issue → Task but not an Epic under an
Epic. We map epic → Epic, feature → Epic, story → Issue, task → Task: a feature's Epic is the parent of
its Issues (so every story and task shows on the boards under it) and is *related* to its epic's Epic
(System.LinkTypes.Related) instead of nested. Basic has no Test Case type unless the organization
added the test types: pre-flight then switches QA off for the job and says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from outbox.ado.errors import AdoPermanent
from outbox.ado.types import FieldInfo
from vocab import ItemKind

_REQUIREMENT_TYPES = (
    ("User Story", "Agile"),
    ("Product Backlog Item", "Scrum"),
    ("Requirement", "CMMI"),
    ("Issue", "Basic"),
)


def enabled_type_names(types: Iterable[Mapping[str, Any]]) -> list[str]:
    return [str(t["name"]) for t in types if "name" in t and not t.get("isDisabled")]


def discover(type_names: Iterable[str]) -> tuple[str, dict[str, str | None]]:
    """Return the process name and the type name per kind (None: the process has no such type)."""
    present = {name.casefold(): name for name in type_names}
    found = next(((present[r.casefold()], p) for r, p in _REQUIREMENT_TYPES if r.casefold() in present), None)
    if found is None:
        raise AdoPermanent(
            f"cannot recognise the project's process from its work item types: {sorted(present.values())}"
        )
    story, process = found

    def pick(*candidates: str) -> str | None:
        return next((present[c.casefold()] for c in candidates if c.casefold() in present), None)

    test_case = pick("Test Case")
    names: dict[str, str | None] = {
        "epic": pick("Epic"),
        "feature": pick("Feature", "Epic"),
        "story": story,
        "task": pick("Task"),
        "test_case": test_case,
        "test_plan": "Test Plan" if test_case else None,
        "test_suite": "Test Suite" if test_case else None,
    }
    return process, names


def parse_fields(values: Iterable[Mapping[str, Any]]) -> dict[str, FieldInfo]:
    """The `workitemtypes/{type}/fields` list as ref name → FieldInfo."""
    fields: dict[str, FieldInfo] = {}
    for value in values:
        ref = value.get("referenceName")
        if isinstance(ref, str):
            allowed = value.get("allowedValues") or ()
            fields[ref] = FieldInfo(
                ref,
                bool(value.get("alwaysRequired")),
                tuple(allowed),
                str(value.get("name") or ref),
                value.get("defaultValue") not in (None, ""),
            )
    return fields


def missing_type_error(process: str, kind: str) -> AdoPermanent:
    if kind in (ItemKind.TEST_CASE, ItemKind.TEST_PLAN, ItemKind.TEST_SUITE):
        return AdoPermanent(
            f"QA artifacts are not available for process {process}: the project has no Test Case type "
            "(switch workflow.include_qa off, or add the test types to the process)"
        )
    return AdoPermanent(f"process {process} has no work item type for {kind} items")
