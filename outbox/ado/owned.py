"""The work item fields backlogd owns, both ways (pure).

An update writes only these (title, description, acceptance criteria, size, priority, original
estimate, steps) and a conflict is decided only on them: a work item whose links, state, tags or
remaining work moved in Azure DevOps is not "changed by someone else" for us. ``theirs`` turns the
owned fields of a work item back into our item's field names, so the user can compare and adopt.
"""

from __future__ import annotations

import re
from html import unescape
from typing import Any

from outbox.ado import mapping

OWNED: tuple[str, ...] = (
    mapping.TITLE,
    mapping.DESCRIPTION,
    mapping.ACCEPTANCE,
    *mapping.SIZE_FIELDS,
    mapping.PRIORITY,
    mapping.ORIGINAL_ESTIMATE,
    mapping.STEPS,
)
CHANGED_BY = "System.ChangedBy"


def pick(fields: dict[str, Any]) -> dict[str, Any]:
    """The owned fields among ``fields`` (a create's or a work item's)."""
    return {ref: fields[ref] for ref in OWNED if ref in fields and fields[ref] is not None}


def same(ours: dict[str, Any], theirs: dict[str, Any]) -> bool:
    """Whether two sets of owned fields say the same (numbers by value, text without edge blanks)."""
    return all(_norm(ours.get(ref)) == _norm(theirs.get(ref)) for ref in OWNED)


def _norm(value: Any) -> Any:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return float(value)
    return str(value).strip()


_TAG = re.compile(r"<[^>]+>")
_BREAK = re.compile(r"(?i)<br\s*/?>|</(div|p|li)>")
_ITEM = re.compile(r"(?is)<li>(.*?)</li>")
_PARAM = re.compile(r"(?is)<parameterizedString[^>]*>(.*?)</parameterizedString>")
_STEP = re.compile(r"(?is)<step\b[^>]*>(.*?)</step>")


def text_of(html: str) -> str:
    """Rich text as plain text: breaks and blocks become newlines, tags go, entities are decoded."""
    plain = unescape(_TAG.sub("", _BREAK.sub("\n", html)))
    return "\n".join(line.strip() for line in plain.splitlines() if line.strip())


def theirs(work_item: dict[str, Any]) -> dict[str, Any]:
    """A work item's owned fields under our names, with its ``rev`` and who changed it last."""
    fields = work_item.get("fields") or {}
    out: dict[str, Any] = {"title": str(fields.get(mapping.TITLE, ""))}
    if mapping.DESCRIPTION in fields:
        out["description"] = text_of(str(fields[mapping.DESCRIPTION] or ""))
    if mapping.ACCEPTANCE in fields:
        raw = str(fields[mapping.ACCEPTANCE] or "")
        items = [text_of(i) for i in _ITEM.findall(raw)] or text_of(raw).splitlines()
        out["acceptance_criteria"] = [i for i in items if i]
    size = next((fields[f] for f in mapping.SIZE_FIELDS if fields.get(f) is not None), None)
    if size is not None:
        out["story_points"] = size
    if fields.get(mapping.PRIORITY) is not None:
        out["priority"] = fields[mapping.PRIORITY]
    if fields.get(mapping.ORIGINAL_ESTIMATE) is not None:
        out["estimate_hours"] = fields[mapping.ORIGINAL_ESTIMATE]
    if fields.get(mapping.STEPS):
        out["steps"] = _steps(str(fields[mapping.STEPS]))
    changed_by = fields.get(CHANGED_BY)
    out["changed_by"] = (
        str(changed_by.get("displayName", "")) if isinstance(changed_by, dict) else str(changed_by or "")
    )
    out["rev"] = int(work_item.get("rev") or 0)
    return out


def _steps(xml: str) -> list[dict[str, str]]:
    steps = []
    for step in _STEP.findall(xml):
        texts = [text_of(unescape(p)) for p in _PARAM.findall(step)] + ["", ""]
        steps.append({"action": texts[0], "expected": texts[1]})
    return steps
