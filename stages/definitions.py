"""The five generating stages: what each asks for, from which parent, under which limit.

A stage call is identified by ``<stage>:<parent id>`` (``epics:root`` for the vision). Its request
carries the parent chain (vision → epic → feature → story) and the titles already used among the
siblings, never the whole backlog, so prompts stay small however big the job grows.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from typing import Any

from stages.capabilities import is_cross_cutting
from stages.models import Item
from stages.providers.base import ChatMessage, CompletionRequest
from stages.schema import request_schema
from vocab import GENERATED_KINDS, KINDS, ItemKind
from vocab.vision import Sentence, Vision


@dataclass(frozen=True)
class StageDef:
    name: str  # "epics"
    kind: ItemKind  # what it produces
    parent_kind: ItemKind | None  # what it expands (None: the vision)
    limit: str  # the Limits attribute that caps it
    agent: str  # shown to users as the "current agent"


_LIMITS = {
    ItemKind.EPIC: ("max_epics", "Epic strategist"),
    ItemKind.FEATURE: ("max_features_per_epic", "Feature decomposer"),
    ItemKind.STORY: ("max_stories_per_feature", "Story writer"),
    ItemKind.TASK: ("max_tasks_per_story", "Developer"),
    ItemKind.TEST_CASE: ("max_test_cases_per_story", "QA lead"),
}
STAGES: dict[str, StageDef] = {
    stage: StageDef(stage, kind, KINDS[kind].parent, *_LIMITS[kind])
    for kind in GENERATED_KINDS
    if (stage := KINDS[kind].stage) is not None
}
LEVEL: dict[str, int] = {kind: KINDS[kind].level for kind in GENERATED_KINDS}


def child_stages(kind: ItemKind | None, include_qa: bool) -> list[StageDef]:
    """The stages that run once an item of ``kind`` is committed (``None``: the vision)."""
    return [
        s for s in STAGES.values() if s.parent_kind == kind and (include_qa or s.kind != ItemKind.TEST_CASE)
    ]


def call_key(stage: str, parent_id: str | None) -> str:
    return f"{stage}:{parent_id or 'root'}"


def wrapper_schema(
    stage: StageDef, max_items: int, source_ids: list[str] | tuple[str, ...] = ("S1",)
) -> dict[str, Any]:
    """JSON Schema of one stage answer: ``{"<stage>": [<item>, ...]}`` with 1..max_items items whose
    ``sources`` may cite only ``source_ids`` (see ``stages.schema``)."""
    return request_schema(stage.name, stage.kind, max_items, list(source_ids))


@cache
def _template(name: str) -> str:
    return resources.files("stages").joinpath(f"prompts/{name}.txt").read_text(encoding="utf-8")


def _describe_parent(item: Item) -> str:
    body = item.body
    lines = [f"{item.kind.replace('_', ' ').title()}: {item.title}", f"  {body.get('description', '')}"]
    if item.kind == "story":
        lines.append(f"  Story: {body.get('user_story', '')}")
        lines += [f"  - {c}" for c in body.get("acceptance_criteria", [])]
    return "\n".join(lines)


def build_request(
    stage: StageDef,
    vision: Vision,
    chain: list[Item],
    siblings: list[str],
    max_items: int,
    *,
    repair: list[str] | None = None,
    previous: str = "",
    instruction: str = "",
) -> CompletionRequest:
    """Render the stage's prompt template. ``repair`` adds a repair turn with the validation errors;
    ``instruction`` is what the user asked for when regenerating one item's children."""
    shown = _relevant(vision, chain)
    values = {
        "max_items": str(max_items),
        "title": vision.title or "(untitled)",
        "domain": vision.domain or "(unspecified)",
        "sentences": "\n".join(f"[{s.id}] {s.text}" for s in shown),
        "users": ", ".join(vision.target_users) or "(infer them from the vision)",
        "parents": "\n".join(_describe_parent(p) for p in chain) or "(none: start from the vision)",
        "siblings": "\n".join(f"- {t}" for t in siblings) or "(none yet)",
    }
    system = _template("system").format_map(values)
    user = _template(stage.name).format_map(values)
    if instruction:
        user += f"\n\nThe product owner asks for this answer: {instruction.strip()}"
    messages = [ChatMessage(role="system", content=system), ChatMessage(role="user", content=user)]
    if repair:
        messages.append(ChatMessage(role="assistant", content=previous or "(no usable answer)"))
        fix = "\n".join(f"- {p}" for p in repair[:20])
        messages.append(
            ChatMessage(
                role="user",
                content=f"Your answer was not accepted:\n{fix}\nAnswer again with the whole corrected JSON, "
                f"at most {max_items} items.",
            )
        )
    context = {
        "stage": stage.name,
        "vision": vision.model_dump(mode="json"),
        "chain": [p.model_dump(mode="json") for p in chain],
        "siblings": siblings,
        "max_items": max_items,
        "repair": repair or [],
        "instruction": instruction,
        "source_ids": [s.id for s in shown],
        "inherited": list(chain[-1].sources) if chain else [],
    }
    return CompletionRequest(
        stage=stage.name,
        messages=tuple(messages),
        schema_name=f"backlog_{stage.name}",
        json_schema=wrapper_schema(stage, max_items, [s.id for s in shown]),
        max_items=max_items,
        context=context,
    )


CROSS_CUTTING = ("constraints", "success_metrics")  # sections every item below an epic may cite


def _relevant(vision: Vision, chain: list[Item]) -> list[Sentence]:
    """All sentences for the epics call; below it those the parent chain cites, the vision's aim and
    the cross-cutting constraints and success metrics (small prompts whose ids are the schema's enum)."""
    if not chain:
        return list(vision.sentences)
    cited = {sid for item in chain for sid in item.sources}
    aim = next((s.id for s in vision.sentences if s.section == "vision"), None)
    everywhere = _cross_cutting(tuple((s.text, s.section) for s in vision.sentences))
    shown = [s for i, s in enumerate(vision.sentences) if s.id in cited or s.id == aim or everywhere[i]]
    return shown or list(vision.sentences)


@lru_cache(maxsize=64)  # one entry per vision a running job uses
def _cross_cutting(sentences: tuple[tuple[str, str], ...]) -> tuple[bool, ...]:
    """Which sentences are constraints or success metrics, by section or (in free text) by form."""
    return tuple(section in CROSS_CUTTING or is_cross_cutting(text, section) for text, section in sentences)


def prompt_hash(request: CompletionRequest) -> str:
    text = json.dumps([m.model_dump() for m in request.messages], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
