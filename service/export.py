"""Exports of a job's backlog: a JSON document (the job, the tree, test plans and suites,
traceability), Azure Boards' CSV import layout, Markdown.

Pure functions of the job and item rows. A job's options are what it ran with and never hold a secret
(a per-job PAT lives in memory only), so they are exported as the settings used.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from outbox.records import ItemRow, JobRow
from vocab import GENERATED_KINDS, KINDS, ItemKind

EXPORT_FORMAT = "backlogd.export/2"

_TYPE_NAMES = {
    "epic": "Epic",
    "feature": "Feature",
    "story": "User Story",
    "task": "Task",
    "test_case": "Test Case",
}
# what each kind lists under it, by the table (a story: its tasks, then its test cases)
_CHILD_KINDS = {k: tuple(c for c in GENERATED_KINDS if KINDS[c].parent == k) for k in GENERATED_KINDS}
_FIELDS = (
    "user_story",
    "acceptance_criteria",
    "story_points",
    "priority",
    "business_value",
    "estimate_hours",
    "activity",
    "preconditions",
    "steps",
)


def tree(items: list[ItemRow]) -> dict[str, Any]:
    """``{"epics": [{..., "features": [{..., "stories": [{..., "tasks": [], "test_cases": []}]}]}]}``."""
    children: dict[str | None, list[ItemRow]] = {}
    for it in items:
        if it.kind in _TYPE_NAMES:
            children.setdefault(it.parent_id, []).append(it)

    def node(it: ItemRow) -> dict[str, Any]:
        out = item_view(it)
        kids = sorted(children.get(it.id, []), key=lambda c: c.position)
        for kind in _CHILD_KINDS.get(it.kind, ()):
            out[KINDS[kind].plural] = [node(c) for c in kids if c.kind == kind]
        return out

    roots = sorted((i for i in children.get(None, []) if i.kind == ItemKind.EPIC), key=lambda i: i.position)
    return {KINDS[ItemKind.EPIC].plural: [node(e) for e in roots]}


EDITABLE = (
    "title",
    "description",
    "acceptance_criteria",
    "story_points",
    "priority",
    "estimate_hours",
    "steps",
)


def edit_fields(it: ItemRow) -> dict[str, Any]:
    """The fields a user edits (and a conflict compares), as the item has them."""
    values = {"title": it.title, **it.body}
    return {k: values[k] for k in EDITABLE if k in values}


def item_view(it: ItemRow) -> dict[str, Any]:
    """One item as ``GET /backlog`` shows it (without its children): detail fields where its kind has
    them, its upload state with the revision we last wrote, ``match`` and ``conflict``."""
    out: dict[str, Any] = {
        "id": it.id,
        "type": it.kind,
        "parent_id": it.parent_id,
        "title": it.title,
        "description": it.body.get("description", ""),
        "sources": it.body.get("sources", []),
    }
    out.update({k: it.body[k] for k in _FIELDS if k in it.body})
    out["upload"] = upload_of(it)
    out["match"] = it.match
    theirs = (it.conflict or {}).get("theirs")
    out["conflict"] = {"ours": edit_fields(it), "theirs": theirs} if theirs is not None else None
    return out


def sentence_coverage(sentences: list[dict[str, Any]], items: list[ItemRow]) -> list[dict[str, Any]]:
    """Each vision sentence with the stories that cite it (``covered_by`` empty: uncovered), as the
    backlog is now (edits move coverage)."""
    cited: dict[str, list[str]] = {}
    for it in items:
        if it.kind == ItemKind.STORY:
            for sid in it.body.get("sources", []):
                cited.setdefault(str(sid), []).append(it.id)
    return [
        {"id": s.get("id"), "text": s.get("text", ""), "covered_by": cited.get(str(s.get("id")), [])}
        for s in sentences
    ]


def upload_of(it: ItemRow) -> dict[str, Any]:
    """Where the item stands with Azure DevOps: state, work item id, link, the revision we last wrote."""
    return {"state": it.state, "ado_id": it.ado_id, "url": it.ado_url, "rev": it.ado_rev, "error": it.error}


def qa_items(items: list[ItemRow], kind: ItemKind) -> list[dict[str, Any]]:
    """Test plans (one per feature) or suites (one per story), each naming what it tests."""
    return [
        {
            "id": it.id,
            "type": it.kind,
            "title": it.title,
            "for_id": it.parent_id,
            "depends_on": list(it.depends_on),
            "upload": upload_of(it),
        }
        for it in items
        if it.kind == kind
    ]


def job_of(job: JobRow) -> dict[str, Any]:
    return {
        "id": job.id,
        "title": job.vision.title,
        "status": job.status,
        "created_at": job.created_at,
        "finished_at": job.finished_at,
        "vision": job.vision.as_mapping(),
        "settings": job.options.model_dump(mode="json"),
    }


def document(job: JobRow, items: list[ItemRow]) -> dict[str, Any]:
    """The whole job as one JSON document: what was asked, with what settings, what came of it."""
    sentences = [s.model_dump() for s in job.vision.sentences]
    covered = sentence_coverage(sentences, items)
    return {
        "format": EXPORT_FORMAT,
        "job": job_of(job),
        **tree(items),
        KINDS[ItemKind.TEST_PLAN].plural: qa_items(items, ItemKind.TEST_PLAN),
        KINDS[ItemKind.TEST_SUITE].plural: qa_items(items, ItemKind.TEST_SUITE),
        "traceability": {
            "sentences": covered,
            "uncovered": [s["id"] for s in covered if not s["covered_by"]],
        },
    }


def to_json(job: JobRow, items: list[ItemRow]) -> str:
    return json.dumps(document(job, items), indent=2, ensure_ascii=False)


BOM = "\ufeff"  # Excel reads the file as UTF-8 (ü, —, emoji) only with it
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(cell: Any) -> Any:
    """OWASP CSV injection: a text cell a spreadsheet would take for a formula gets a leading ``'``."""
    if isinstance(cell, str) and cell.startswith(_FORMULA_STARTS):
        return "'" + cell
    return cell


class _SafeWriter:
    """A csv writer whose every text cell is neutralised."""

    def __init__(self, buf: io.StringIO) -> None:
        self._writer = csv.writer(buf, lineterminator="\r\n")  # RFC 4180: a CR or LF in a cell is quoted

    def writerow(self, row: list[Any]) -> None:
        self._writer.writerow([neutralise(cell) for cell in row])


def to_csv(items: list[ItemRow]) -> str:
    """Azure Boards import: one row per item, the title in the column of its depth (Title 1..4); it
    starts with a UTF-8 BOM and no cell can start a formula."""
    buf = io.StringIO()
    buf.write(BOM)
    writer = _SafeWriter(buf)
    writer.writerow(
        [
            "ID",
            "Work Item Type",
            "Title 1",
            "Title 2",
            "Title 3",
            "Title 4",
            "Description",
            "Acceptance Criteria",
            "Story Points",
            "Original Estimate",
            "Priority",
            "Steps",
        ]
    )

    def walk(node: dict[str, Any], depth: int) -> None:
        titles = [""] * 4
        titles[min(depth, 3)] = node["title"]
        steps = " | ".join(f"{s['action']} => {s['expected']}" for s in node.get("steps", []))
        writer.writerow(
            [
                "",
                _TYPE_NAMES[node["type"]],
                *titles,
                node["description"],
                "\n".join(node.get("acceptance_criteria", [])),
                node.get("story_points", ""),
                node.get("estimate_hours", ""),
                node.get("priority", ""),
                steps,
            ]
        )
        for kind in _CHILD_KINDS.get(node["type"], ()):
            for child in _list(node, kind):
                walk(child, depth + 1)

    for epic in _list(tree(items), ItemKind.EPIC):
        walk(epic, 0)
    return buf.getvalue()


def _list(node: dict[str, Any], kind: ItemKind) -> list[dict[str, Any]]:
    """The children of ``kind`` in a node of ``tree`` (or its top), under the kind's plural."""
    children: list[dict[str, Any]] = node.get(KINDS[kind].plural, [])
    return children


def to_markdown(items: list[ItemRow], title: str = "Backlog") -> str:
    lines = [f"# {title}", ""]
    for e in _list(tree(items), ItemKind.EPIC):
        lines += [f"## Epic: {e['title']}", "", e["description"], ""]
        for f in _list(e, ItemKind.FEATURE):
            lines += [f"### Feature: {f['title']}", "", f["description"], ""]
            for s in _list(f, ItemKind.STORY):
                lines += [
                    f"#### Story: {s['title']} ({s.get('story_points', '?')} points)",
                    "",
                    f"> {s.get('user_story', '')}",
                    "",
                    "Acceptance criteria:",
                    "",
                ]
                lines += [f"- {c}" for c in s.get("acceptance_criteria", [])] + [""]
                if _list(s, ItemKind.TASK):
                    lines += (
                        ["Tasks:", ""]
                        + [
                            f"- [ ] {t['title']} ({t.get('estimate_hours', '?')} h, {t.get('activity', '')})"
                            for t in _list(s, ItemKind.TASK)
                        ]
                        + [""]
                    )
                for tc in _list(s, ItemKind.TEST_CASE):
                    lines += [f"Test case: **{tc['title']}** — {tc.get('preconditions', '')}", ""]
                    lines += [
                        f"{n}. {st['action']} → {st['expected']}"
                        for n, st in enumerate(tc.get("steps", []), 1)
                    ] + [""]
    return "\n".join(lines)


def render(job: JobRow, items: list[ItemRow], fmt: str) -> str:
    if fmt == "json":
        return to_json(job, items)
    if fmt == "csv":
        return to_csv(items)
    if fmt == "md":
        return to_markdown(items, job.vision.title or "Backlog")
    raise ValueError(f"unknown export format {fmt!r}: use json, csv or md")
