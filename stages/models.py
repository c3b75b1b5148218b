"""The backlog domain: what each stage produces, as frozen pydantic models with no I/O.

The ``*Out`` models are what an LLM (or the offline generator) must return for one item; their JSON
Schema is sent to the provider. ``Item`` is a generated item with its identity and place in the tree;
its ``body`` is the ``*Out`` model dumped to a dict, which is also the persisted row format the
uploader reads (keys: title, description, sources, and each kind's own fields).
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vocab import ItemKind

STORY_POINTS = (1, 2, 3, 5, 8, 13)  # the Fibonacci scale teams estimate with
FIBONACCI = STORY_POINTS
ACTIVITIES = ("Development", "Design", "Testing", "Documentation", "Deployment", "Requirements")
TITLE_MAX = 255
DESCRIPTION_MAX = 4000  # generous: the request schema asks for far less; repair cuts at a word

_USER_STORY = re.compile(r"^As an? .+?, I want .+?,? so that .+", re.IGNORECASE | re.DOTALL)
_GWT = re.compile(r"^Given .+?\bWhen\b .+?\bThen\b .+", re.IGNORECASE | re.DOTALL)


class _Out(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=3, max_length=TITLE_MAX)
    description: str = Field(min_length=1, max_length=DESCRIPTION_MAX)
    sources: list[str] = Field(min_length=1, description="Ids of the vision sentences this item derives from")


class EpicOut(_Out):
    priority: int = Field(ge=1, le=4)
    business_value: int = Field(ge=1, le=100)


class FeatureOut(_Out):
    priority: int = Field(ge=1, le=4)


class StoryOut(_Out):
    user_story: str = Field(description="As a <role>, I want <goal>, so that <benefit>")
    acceptance_criteria: list[str] = Field(min_length=3, description="Given ... When ... Then ...")
    story_points: int
    priority: int = Field(ge=1, le=4)

    @field_validator("user_story")
    @classmethod
    def _story_format(cls, v: str) -> str:
        if not _USER_STORY.match(v):
            raise ValueError("must read 'As a <role>, I want <goal>, so that <benefit>'")
        return v

    @field_validator("acceptance_criteria")
    @classmethod
    def _gwt(cls, v: list[str]) -> list[str]:
        bad = [i for i, c in enumerate(v) if not _GWT.match(c.strip())]
        if bad:
            raise ValueError(f"criteria {bad} must read 'Given ... When ... Then ...'")
        return v

    @field_validator("story_points")
    @classmethod
    def _fib(cls, v: int) -> int:
        if v not in FIBONACCI:
            raise ValueError(f"must be one of {list(FIBONACCI)}")
        return v


class TaskOut(_Out):
    estimate_hours: float = Field(gt=0, le=40)
    activity: Literal["Development", "Design", "Testing", "Documentation", "Deployment", "Requirements"]


class TestStep(BaseModel):
    __test__ = False  # not a pytest test class despite the name

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    action: str = Field(min_length=1)
    expected: str = Field(min_length=1)


class TestCaseOut(_Out):
    __test__ = False  # not a pytest test class despite the name

    preconditions: str = Field(min_length=1)
    steps: list[TestStep] = Field(min_length=2)
    priority: int = Field(ge=1, le=4)


OUT_MODELS: dict[str, type[_Out]] = {
    "epic": EpicOut,
    "feature": FeatureOut,
    "story": StoryOut,
    "task": TaskOut,
    "test_case": TestCaseOut,
}


class Item(BaseModel):
    """One backlog item with its identity: a UUID, its parent's UUID and its position among siblings."""

    model_config = ConfigDict(frozen=True)

    id: str
    job_id: str
    parent_id: str | None
    kind: ItemKind
    position: int
    title: str
    body: dict[str, Any]
    depends_on: tuple[str, ...] = ()

    @property
    def sources(self) -> list[str]:
        return list(self.body.get("sources", []))
