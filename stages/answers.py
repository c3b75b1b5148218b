"""Accepting an LLM answer: parse the JSON, repair what fits the request's schema after small fixes,
validate against the stage's models, enforce the limits and the title rules. Pure: raises
``OutputTruncated`` / ``OutputInvalid`` (with the problems listed, for a repair turn) only when the
answer is structurally unusable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from stages.definitions import STAGES, StageDef
from stages.errors import OutputInvalid, OutputTruncated
from stages.models import OUT_MODELS, TITLE_MAX
from stages.providers.base import Completion
from stages.providers.jsonout import extract_json
from stages.repair import closest_sentences, cut_at_word, repair_item
from stages.schema import request_schema
from vocab.vision import Vision


def cut_title(title: str, limit: int = TITLE_MAX) -> str:
    """Trim to ``limit`` characters on a word boundary (never mid-word unless one word is longer)."""
    return cut_at_word(title, limit)


def unique_title(title: str, taken: set[str]) -> str:
    """Make ``title`` unique among ``taken`` (case-insensitive) by numbering it."""
    if title.casefold() not in taken:
        return title
    n = 2
    while True:
        suffix = f" ({n})"
        cand = cut_title(title, TITLE_MAX - len(suffix)) + suffix
        if cand.casefold() not in taken:
            return cand
        n += 1


@dataclass(frozen=True)
class Accepted:
    """The items one answer yields and the repairs made to get them (each a short sentence)."""

    bodies: list[dict[str, Any]]
    repairs: list[str] = field(default_factory=list)


def parse_answer(
    stage: StageDef,
    completion: Completion,
    vision: Vision,
    max_items: int,
    siblings: list[str],
    *,
    schema: dict[str, Any] | None = None,
    inherited: list[str] | None = None,
) -> list[dict[str, Any]]:
    """Validated item bodies for one stage call (see ``accept_answer``)."""
    return accept_answer(
        stage, completion, vision, max_items, siblings, schema=schema, inherited=inherited
    ).bodies


def accept_answer(
    stage: StageDef,
    completion: Completion,
    vision: Vision,
    max_items: int,
    siblings: list[str],
    *,
    schema: dict[str, Any] | None = None,
    inherited: list[str] | None = None,
) -> Accepted:
    """At most ``max_items`` valid item bodies, repaired to fit ``schema`` (the request's), titles unique.

    Raises ``OutputTruncated`` for a cut answer and ``OutputInvalid`` only when the answer is
    structurally unusable: not JSON, not the stage's shape, or no item survives. An item that cannot
    be repaired is dropped, and the drop is reported with the repairs."""
    if completion.finish_reason == "length":
        raise OutputTruncated(completion.content)
    data = extract_json(completion.content)
    if isinstance(data, list):  # a bare array is accepted as the stage's list
        data = {stage.name: data}
    if isinstance(data, dict) and len(data) == 1 and stage.name not in data:
        (key, only), *_ = data.items()
        if isinstance(only, list) and key not in STAGES:  # {"items": [...]}: the list under another name
            data = {stage.name: only}
    if not isinstance(data, dict) or not isinstance(data.get(stage.name), list):
        raise OutputInvalid([f"expected an object with a '{stage.name}' array"], raw=completion.content)
    schema = schema or request_schema(stage.name, stage.kind, max_items, [s.id for s in vision.sentences])
    item_schema: dict[str, Any] = schema["properties"][stage.name]["items"]
    all_items = data[stage.name]
    repairs: list[str] = []
    if len(all_items) > max_items:
        repairs.append(f"{stage.name}: kept the first {max_items} of {len(all_items)} items")
    raw_items = all_items[:max_items]
    if not raw_items:
        raise OutputInvalid([f"'{stage.name}' is empty: at least one item is required"], completion.content)
    sentences = [(s.id, s.text) for s in vision.sentences]
    taken = {t.casefold() for t in siblings}
    problems: list[str] = []
    out: list[dict[str, Any]] = []
    for i, raw in enumerate(raw_items):
        where = f"{stage.name}[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{where}: expected an object")
            continue
        fallback = inherited or closest_sentences(_text_of(raw), sentences)
        fixed, fixes = repair_item(raw, item_schema, fallback, where)
        body = _check_item(stage, fixed, where, problems)
        if body is None:
            continue
        repairs += fixes
        body["title"] = unique_title(body["title"], taken)
        taken.add(body["title"].casefold())
        out.append(body)
    if not out:
        raise OutputInvalid(problems, raw=completion.content)
    repairs += [f"dropped an item that could not be repaired: {p}" for p in problems]
    return Accepted(out, repairs)


def _text_of(raw: dict[str, Any]) -> str:
    return " ".join(str(raw.get(k, "")) for k in ("title", "description", "user_story"))


def _check_item(
    stage: StageDef, raw: dict[str, Any], where: str, problems: list[str]
) -> dict[str, Any] | None:
    try:
        model = OUT_MODELS[stage.kind].model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors()[:6]:
            loc = ".".join(str(p) for p in err["loc"])
            problems.append(f"{where}.{loc}: {err['msg']}")
        return None
    return model.model_dump(mode="json")
