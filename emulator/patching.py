"""JSON Patch documents applied to work items: validate everything first, then commit (or not, for
validateOnly). Creates and updates share one path so their rules cannot drift apart."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulator import links
from emulator.errors import AdoError, rule_error
from emulator.processes import FIELDS, FieldDef, TypeDef, type_fields
from emulator.state import EmulatorState, Project, Relation, WorkItem, now_iso
from emulator.values import coerce, join_tags, normalize_tags

EMULATOR_USER: dict[str, Any] = {
    "displayName": "Backlogd Emulator",
    "id": "8d8fbcb2-4fd5-4e2f-9d3a-5c1a0f1e7a01",
    "uniqueName": "emulator@backlogd.invalid",
    "descriptor": "aad.ZW11bGF0b3I",
}
_BYPASS_WRITABLE = frozenset(
    {"System.CreatedBy", "System.CreatedDate", "System.ChangedBy", "System.ChangedDate"}
)


@dataclass
class Draft:
    fields: dict[str, Any]
    new_relations: list[Relation] = field(default_factory=list)
    removed_relations: list[Relation] = field(default_factory=list)
    formats: dict[str, str] = field(default_factory=dict)
    field_changed: bool = False


def parse_ops(body: Any) -> list[dict[str, Any]]:
    if not isinstance(body, list) or not all(isinstance(op, dict) for op in body):
        raise AdoError(
            400, "VssPropertyValidationException", "You must pass a valid patch document in the body."
        )
    return body


def _field_def(type_def: TypeDef, ref: str, extra: tuple[str, ...]) -> FieldDef:
    if ref in extra:
        return FieldDef(ref, ref.rsplit(".", 1)[-1], "string")
    known = {r.casefold(): r for r in type_fields(type_def)}
    canonical = known.get(ref.casefold())
    if canonical is None:
        raise AdoError(
            400, "WorkItemTrackingFieldDefinitionNotFoundException", f"TF51535: Cannot find field {ref}."
        )
    return FIELDS[canonical]


def build_draft(
    state: EmulatorState, type_def: TypeDef, item: WorkItem | None, ops: list[dict[str, Any]], bypass: bool
) -> Draft:
    draft = Draft(dict(item.fields) if item else {})
    extra = state.config.required_fields.get(type_def.name, ())
    for op in ops:
        name, path, value = str(op.get("op", "")).lower(), str(op.get("path", "")), op.get("value")
        if name not in {"add", "replace", "remove", "test"}:
            raise AdoError(
                400, "VssPropertyValidationException", f"VS403356: {name} operation is not supported."
            )
        if path.casefold() == "/rev" and name == "test":
            _test_rev(item, value)
        elif path.casefold() in {"/id", "/rev"}:
            continue  # temp ids are a $batch concern; the service ignores them elsewhere
        elif path.lower().startswith("/fields/"):
            _apply_field(draft, _field_def(type_def, path[8:], extra), name, value, item is not None, bypass)
        elif path.lower().startswith("/multilinefieldsformat/"):
            draft.formats[path.split("/", 2)[2]] = str(value)
        elif path.casefold() == "/relations/-" and name == "add":
            draft.new_relations.append(links.parse_relation(state, value))
        elif path.lower().startswith("/relations/") and name == "remove" and item is not None:
            draft.removed_relations.append(_relation_at(item, path))
        elif path.casefold() == "/relations":
            raise AdoError(
                400,
                "VssPropertyValidationException",
                "Work item patch does not support patching the top level property at path /relations.",
            )
        else:
            raise AdoError(
                400, "VssPropertyValidationException", f"VS403343: The path {path} is not supported."
            )
    return draft


def _test_rev(item: WorkItem | None, value: Any) -> None:
    current = item.rev if item else 0
    if str(value) != str(current):
        raise AdoError(
            412,
            "TestPatchOperationFailedException",
            f"VS403351: Test Operation for path /rev failed, value {current} was not equal to "
            f"test value {value}.",
        )


def _relation_at(item: WorkItem, path: str) -> Relation:
    index = path.split("/")[2]
    if not index.isdigit() or int(index) >= len(item.relations):
        raise AdoError(400, "VssPropertyValidationException", f"VS403343: The path {path} is not supported.")
    return item.relations[int(index)]


def _apply_field(draft: Draft, fdef: FieldDef, op: str, value: Any, existing: bool, bypass: bool) -> None:
    if fdef.read_only and not (bypass and fdef.ref in _BYPASS_WRITABLE):
        raise rule_error(fdef.ref, fdef.name, "ReadOnly")
    if op == "test":
        return
    draft.field_changed = True
    if op == "remove" or value is None:
        draft.fields.pop(fdef.ref, None)
        return
    if fdef.ref == "System.Tags":
        tags = normalize_tags(value)
        if op == "add" and existing:  # add merges into the existing list; replace overwrites
            tags = normalize_tags(join_tags([str(draft.fields.get("System.Tags", "")), *tags]))
        if tags:
            draft.fields[fdef.ref] = join_tags(tags)
        else:
            draft.fields.pop(fdef.ref, None)
        return
    draft.fields[fdef.ref] = coerce(fdef, value)


def _apply_defaults(project: Project, type_def: TypeDef, fields: dict[str, Any]) -> None:
    now = now_iso()
    present = type_fields(type_def)
    fields.setdefault("System.AreaPath", project.name)
    fields.setdefault("System.IterationPath", project.name)
    fields["System.TeamProject"] = project.name
    fields["System.WorkItemType"] = type_def.name
    fields.setdefault("System.State", type_def.initial_state)
    fields.setdefault("System.Reason", type_def.initial_reason)
    fields.setdefault("System.CreatedDate", now)
    fields.setdefault("System.CreatedBy", EMULATOR_USER)
    fields.setdefault("System.ChangedDate", fields["System.CreatedDate"])
    fields.setdefault("System.ChangedBy", fields["System.CreatedBy"])
    fields["System.CommentCount"] = 0
    fields.setdefault("Microsoft.VSTS.Common.StateChangeDate", now)
    if "Microsoft.VSTS.Common.Priority" in present:
        fields.setdefault("Microsoft.VSTS.Common.Priority", 2)
    if "Microsoft.VSTS.Common.ValueArea" in present and type_def.backlog:
        fields.setdefault("Microsoft.VSTS.Common.ValueArea", "Business")
    if "Microsoft.VSTS.Common.Severity" in present:
        fields.setdefault("Microsoft.VSTS.Common.Severity", "3 - Medium")


def _validate(
    state: EmulatorState, project: Project, type_def: TypeDef, item_id: int, fields: dict[str, Any]
) -> None:
    required = ("System.Title", *state.config.required_fields.get(type_def.name, ()))
    for ref in required:
        if not str(fields.get(ref, "")).strip():
            name = FIELDS[ref].name if ref in FIELDS else ref.rsplit(".", 1)[-1]
            raise rule_error(ref, name, "Required, InvalidEmpty")
    if str(fields.get("System.State")) not in type_def.states:
        raise rule_error("System.State", "State", "LimitedToValues")
    for ref, structure in (("System.AreaPath", "area"), ("System.IterationPath", "iteration")):
        if not state.tree_path_exists(project, structure, str(fields[ref])):
            raise AdoError(
                400,
                "WorkItemFieldInvalidTreeNameException",
                f"TF401347: Invalid tree name given for work item {item_id}, field '{ref}'.",
            )


def create_item(
    state: EmulatorState,
    project: Project,
    type_def: TypeDef,
    ops: list[dict[str, Any]],
    *,
    bypass: bool,
    validate_only: bool,
) -> WorkItem:
    draft = build_draft(state, type_def, None, ops, bypass)
    _apply_defaults(project, type_def, draft.fields)
    _validate(state, project, type_def, -1, draft.fields)
    links.check_relations(state, None, [], draft.new_relations)
    item = WorkItem(0, project.name, type_def.name, 1, draft.fields)
    if validate_only:  # nothing saved, no id consumed
        item.relations = list(draft.new_relations)
        return item
    item.id = state.allocate_id()
    item.created_at = state.clock()
    item.fields["System.Id"] = item.id
    state.items[item.id] = item
    for relation in draft.new_relations:
        links.attach(state, item, relation)
    for tag in item.tags:
        state.creates_by_tag[tag] += 1
    return item


def update_item(
    state: EmulatorState,
    project: Project,
    type_def: TypeDef,
    item: WorkItem,
    ops: list[dict[str, Any]],
    *,
    bypass: bool,
    validate_only: bool,
) -> WorkItem:
    draft = build_draft(state, type_def, item, ops, bypass)
    _validate(state, project, type_def, item.id, draft.fields)
    kept = [r for r in item.relations if r not in draft.removed_relations]
    links.check_relations(state, item.id, kept, draft.new_relations)
    if validate_only:
        return item
    link_change = bool(draft.new_relations or draft.removed_relations)
    if draft.field_changed or (link_change and state.config.link_changes_bump_rev):
        draft.fields["System.ChangedDate"] = now_iso()
        item.rev += 1
    item.fields = draft.fields
    for relation in draft.removed_relations:
        links.detach(state, item, relation)
    for relation in draft.new_relations:
        links.attach(state, item, relation)
    return item
