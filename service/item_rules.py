"""What a user's edit must satisfy: the same rules as a generated item (``stages/models.py``: title
length, criteria in Given/When/Then and how many, points on the Fibonacci scale, priority 1–4, hours
0–40, two steps or more) and a title no sibling of the same kind already has. Pure functions; a
problem names the field it is about."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from outbox.records import ItemRow
from stages.models import OUT_MODELS
from stages.text import normalise
from vocab import KINDS, ItemKind

Problem = dict[str, str]


class Step(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    action: str = Field(max_length=4000)
    expected: str = Field(max_length=4000)


class ItemPatch(BaseModel):
    """``PATCH /api/jobs/{job}/items/{item}``: any of the editable fields."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    title: str | None = Field(default=None, max_length=1000)
    description: str | None = Field(default=None, max_length=20_000)
    acceptance_criteria: list[str] | None = Field(default=None, max_length=50)
    story_points: int | None = None
    priority: int | None = None
    estimate_hours: float | None = None
    steps: list[Step] | None = Field(default=None, max_length=100)

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True, mode="json")


class NewItemBody(ItemPatch):
    """``POST /api/jobs/{job}/items``: a new item under ``parent_id`` (null for an epic)."""

    parent_id: str | None
    type: Literal["epic", "feature", "story", "task", "test_case"]
    title: str = Field(max_length=1000)
    user_story: str | None = Field(default=None, max_length=4000)
    activity: str | None = None
    preconditions: str | None = Field(default=None, max_length=4000)
    business_value: int | None = None


class ResolveBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    keep: Literal["ours", "theirs"]


class RegenerateBody(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    instruction: str = Field(min_length=1, max_length=500)


def field_problems(kind: str, body: dict[str, Any], fields: set[str]) -> list[Problem]:
    """Problems of ``body`` for its kind, limited to ``fields`` (what the user changed: an older item
    that would fail a rule added since is not the user's edit to refuse)."""
    model = OUT_MODELS.get(kind)
    if model is None:
        return [{"field": "type", "message": f"a {kind} cannot be edited"}]
    known = set(model.model_fields)
    problems = [
        {"field": f, "message": f"a {kind} has no field {f}"} for f in sorted(fields - known - {"title"})
    ]
    try:
        model.model_validate({k: v for k, v in body.items() if k in known})
    except ValidationError as exc:
        for err in exc.errors(include_url=False, include_input=False):
            name = str(err["loc"][0]) if err["loc"] else "(body)"
            if name in fields:
                problems.append({"field": name, "message": err["msg"]})
    return problems


def sibling_problem(
    rows: list[ItemRow], item_id: str | None, parent_id: str | None, kind: str, title: str
) -> list[Problem]:
    """A title another item of the same kind under the same parent already has (compared folded)."""
    key = normalise(title)
    for row in rows:
        if (
            row.id != item_id
            and row.parent_id == parent_id
            and row.kind == kind
            and normalise(row.title) == key
        ):
            return [{"field": "title", "message": f"a sibling {kind} is already titled {row.title!r}"}]
    return []


def child_kind_problem(parent: ItemRow | None, kind: str) -> list[Problem]:
    """A new item goes where the generator would put it: a feature under an epic, a story under a
    feature, a task or test case under a story, an epic at the top."""
    wanted = KINDS[ItemKind(kind)].parent
    have = parent.kind if parent is not None else None
    if wanted == have:
        return []
    where = f"under a {wanted}" if wanted else "at the top (parent_id null)"
    return [{"field": "type", "message": f"a {kind} goes {where}, not under a {have or 'nothing'}"}]
