"""Item kinds, each with its plural and the stage that generates it — written once, here.

The plural names the item lists in answers, exports and counts; a generated kind's stage is named by
its plural (``epics``, ``features``, …). Test plans and suites are made by the uploader, not a stage.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ItemKind(StrEnum):
    EPIC = "epic"
    FEATURE = "feature"
    STORY = "story"
    TASK = "task"
    TEST_CASE = "test_case"
    TEST_PLAN = "test_plan"
    TEST_SUITE = "test_suite"


@dataclass(frozen=True)
class KindInfo:
    plural: str
    stage: str | None  # the stage that generates it (None: made by the uploader)
    parent: ItemKind | None  # the kind its stage expands (None: the vision, or not generated)
    label: str  # the short word a terminal's progress line counts it with
    level: int  # its depth in the backlog (a test plan sits beside stories, a suite beside tasks)


KINDS: dict[ItemKind, KindInfo] = {
    ItemKind.EPIC: KindInfo("epics", "epics", None, "epics", 0),
    ItemKind.FEATURE: KindInfo("features", "features", ItemKind.EPIC, "features", 1),
    ItemKind.STORY: KindInfo("stories", "stories", ItemKind.FEATURE, "stories", 2),
    ItemKind.TASK: KindInfo("tasks", "tasks", ItemKind.STORY, "tasks", 3),
    ItemKind.TEST_CASE: KindInfo("test_cases", "test_cases", ItemKind.STORY, "tests", 4),
    ItemKind.TEST_PLAN: KindInfo("test_plans", None, None, "plans", 2),
    ItemKind.TEST_SUITE: KindInfo("test_suites", None, None, "suites", 3),
}
GENERATED_KINDS: tuple[ItemKind, ...] = tuple(k for k, info in KINDS.items() if info.stage is not None)
