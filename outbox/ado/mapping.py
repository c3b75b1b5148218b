"""Our item kinds → one JSON Patch create body for the project's process (pure).

Only fields the target type has are set (learned from `workitemtypes/{type}/fields`). Acceptance
criteria go to their own field where it exists, otherwise they are appended to the description.
Fields configured in ``azure_devops.field_defaults`` for the type are added (custom required fields).
On Basic (Epic → Issue → Task) a feature is an Epic related to its epic, not nested under it.
Story size goes to StoryPoints (Agile), Effort (Scrum, Basic) or Size (CMMI); task estimates to
OriginalEstimate and RemainingWork where present; Activity, or Discipline on CMMI.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from outbox.ado import richtext
from outbox.ado.process import missing_type_error
from outbox.ado.types import ProcessProfile, UploadItem
from vocab import ItemKind

TITLE = "System.Title"
DESCRIPTION = "System.Description"
TAGS = "System.Tags"
AREA = "System.AreaPath"
ITERATION = "System.IterationPath"
PRIORITY = "Microsoft.VSTS.Common.Priority"
BUSINESS_VALUE = "Microsoft.VSTS.Common.BusinessValue"
ACCEPTANCE = "Microsoft.VSTS.Common.AcceptanceCriteria"
ACTIVITY = "Microsoft.VSTS.Common.Activity"
DISCIPLINE = "Microsoft.VSTS.Common.Discipline"
SIZE_FIELDS = (
    "Microsoft.VSTS.Scheduling.StoryPoints",
    "Microsoft.VSTS.Scheduling.Effort",
    "Microsoft.VSTS.Scheduling.Size",
)
ORIGINAL_ESTIMATE = "Microsoft.VSTS.Scheduling.OriginalEstimate"
REMAINING_WORK = "Microsoft.VSTS.Scheduling.RemainingWork"
STEPS = "Microsoft.VSTS.TCM.Steps"
PARENT_REL = "System.LinkTypes.Hierarchy-Reverse"
RELATED_REL = "System.LinkTypes.Related"
TESTS_REL = "Microsoft.VSTS.Common.TestedBy-Reverse"
_ALWAYS = frozenset({TITLE, TAGS, AREA, ITERATION})  # system fields every type has

# Our activities → CMMI disciplines (Analysis, Development, Test, User Education, User Experience).
_DISCIPLINES = {
    "Development": "Development",
    "Deployment": "Development",
    "Design": "User Experience",
    "Testing": "Test",
    "Documentation": "User Education",
    "Requirements": "Analysis",
}


def tag_of(key: str) -> str:
    """A tag may not contain ';' or ','; keys normally have neither, but never break the tag list."""
    return key.replace(";", "-").replace(",", "-").strip()


def work_item_patch(
    item: UploadItem, profile: ProcessProfile, relation_url: Callable[[int], str]
) -> tuple[str, list[dict[str, Any]]]:
    """The type name and the JSON Patch ops creating ``item`` with all fields and its link."""
    type_name = profile.type_for(item.kind)
    if type_name is None:
        raise missing_type_error(profile.process, item.kind)
    fields = _fields(item, profile, type_name)
    ops: list[dict[str, Any]] = [
        {"op": "add", "path": f"/fields/{ref}", "value": value}
        for ref, value in fields.items()
        if ref in _ALWAYS or profile.has_field(type_name, ref)
    ]
    if item.parent_ado_id is not None:
        rel = TESTS_REL if item.kind == ItemKind.TEST_CASE else PARENT_REL
        if item.kind == ItemKind.FEATURE and profile.flat_hierarchy:
            rel = RELATED_REL  # Basic: a feature-Epic stands beside its epic, related, not nested
        link = {"rel": rel, "url": relation_url(item.parent_ado_id)}
        ops.append({"op": "add", "path": "/relations/-", "value": link})
    return type_name, ops


def written_fields(item: UploadItem, profile: ProcessProfile) -> dict[str, Any]:
    """Every field a create of ``item`` sets on the project's type (no links)."""
    type_name = profile.type_for(item.kind)
    if type_name is None:
        raise missing_type_error(profile.process, item.kind)
    fields = _fields(item, profile, type_name)
    return {ref: v for ref, v in fields.items() if ref in _ALWAYS or profile.has_field(type_name, ref)}


def update_patch(owned_now: dict[str, Any], owned_before: dict[str, Any], rev: int) -> list[dict[str, Any]]:
    """The JSON Patch updating a work item last written at ``rev``: the ``test`` of that revision first
    (nothing is written over a change made since), then our owned fields; one we no longer set goes."""
    ops: list[dict[str, Any]] = [{"op": "test", "path": "/rev", "value": rev}]
    ops += [{"op": "add", "path": f"/fields/{ref}", "value": v} for ref, v in owned_now.items()]
    ops += [{"op": "remove", "path": f"/fields/{ref}"} for ref in owned_before if ref not in owned_now]
    return ops


def _fields(item: UploadItem, profile: ProcessProfile, type_name: str) -> dict[str, Any]:
    body = item.body
    fields: dict[str, Any] = {
        TITLE: richtext.title(item.title or str(body.get("title", ""))),
        TAGS: "; ".join(t for t in (tag_of(item.key), tag_of(item.run_tag)) if t),
    }
    if profile.area_path:
        fields[AREA] = profile.area_path
    if profile.iteration_path:
        fields[ITERATION] = profile.iteration_path
    if isinstance(body.get("priority"), int | float):
        fields[PRIORITY] = min(4, max(1, int(body["priority"])))
    fields[DESCRIPTION] = _description(item, profile, type_name)
    if item.kind == ItemKind.EPIC and isinstance(body.get("business_value"), int | float):
        fields[BUSINESS_VALUE] = int(body["business_value"])
    if item.kind == ItemKind.STORY:
        _story_fields(body, profile, type_name, fields)
    elif item.kind == ItemKind.TASK:
        _task_fields(body, profile, type_name, fields)
    elif item.kind == ItemKind.TEST_CASE:
        fields[STEPS] = richtext.steps_xml(body.get("steps") or [])
    for ref, value in profile.field_defaults.get(type_name, {}).items():
        fields.setdefault(ref, value)  # always-required custom fields (azure_devops.field_defaults)
    return fields


def _description(item: UploadItem, profile: ProcessProfile, type_name: str) -> str:
    body = item.body
    blocks: list[str] = []
    if body.get("user_story"):
        blocks.append(richtext.paragraph(str(body["user_story"])))
    if body.get("preconditions"):
        blocks.append(richtext.labelled("Preconditions", richtext.paragraph(str(body["preconditions"]))))
    if body.get("description"):
        blocks.append(richtext.paragraph(str(body["description"])))
    criteria = body.get("acceptance_criteria") or []
    if criteria and not profile.has_field(type_name, ACCEPTANCE):
        blocks.append(richtext.labelled("Acceptance criteria", richtext.bullet_list(map(str, criteria))))
    sources = body.get("sources") or []
    if sources:
        blocks.append(richtext.paragraph("Sources: " + ", ".join(map(str, sources))))
    return "".join(blocks)


def _story_fields(body: dict[str, Any], profile: ProcessProfile, type_name: str, out: dict[str, Any]) -> None:
    criteria = body.get("acceptance_criteria") or []
    if criteria:
        out[ACCEPTANCE] = richtext.bullet_list(map(str, criteria))
    points = body.get("story_points")
    size_field = next((f for f in SIZE_FIELDS if profile.has_field(type_name, f)), None)
    if size_field and isinstance(points, int | float):
        out[size_field] = points


def _task_fields(body: dict[str, Any], profile: ProcessProfile, type_name: str, out: dict[str, Any]) -> None:
    hours = body.get("estimate_hours")
    if isinstance(hours, int | float):
        out[ORIGINAL_ESTIMATE] = hours
        out[REMAINING_WORK] = hours
    activity = body.get("activity")
    if not isinstance(activity, str):
        return
    if profile.has_field(type_name, ACTIVITY):
        _set_allowed(out, profile, type_name, ACTIVITY, activity)
    elif profile.has_field(type_name, DISCIPLINE):
        _set_allowed(out, profile, type_name, DISCIPLINE, _DISCIPLINES.get(activity, "Development"))


def _set_allowed(out: dict[str, Any], profile: ProcessProfile, type_name: str, ref: str, value: str) -> None:
    allowed = profile.allowed(type_name, ref)
    if not allowed or value in allowed:
        out[ref] = value
