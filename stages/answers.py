"""Accepting an LLM answer: parse the JSON, validate it against the stage's models, enforce the limits
and the title rules. Pure: raises ``OutputTruncated`` / ``OutputInvalid`` with the problems listed so
the runner can send a repair turn carrying them.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from stages.definitions import StageDef
from stages.errors import OutputInvalid, OutputTruncated
from stages.models import OUT_MODELS, TITLE_MAX
from stages.providers.base import Completion
from stages.providers.jsonout import extract_json
from stages.vision import Vision


def cut_title(title: str, limit: int = TITLE_MAX) -> str:
    """Trim to ``limit`` characters on a word boundary (never mid-word unless one word is longer)."""
    title = " ".join(title.split())
    if len(title) <= limit:
        return title
    cut = title[: limit + 1].rsplit(" ", 1)[0]
    return (cut if cut and len(cut) <= limit else title[:limit]).rstrip(" ,;:-")


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


def parse_answer(
    stage: StageDef, completion: Completion, vision: Vision, max_items: int, siblings: list[str]
) -> list[dict[str, Any]]:
    """Validated item bodies for one stage call, at most ``max_items``, titles cut and unique."""
    if completion.finish_reason == "length":
        raise OutputTruncated(completion.content)
    data = extract_json(completion.content)
    if isinstance(data, list):  # a bare array is accepted as the stage's list
        data = {stage.name: data}
    if not isinstance(data, dict) or not isinstance(data.get(stage.name), list):
        raise OutputInvalid([f"expected an object with a '{stage.name}' array"], raw=completion.content)
    raw_items = data[stage.name][:max_items]
    if not raw_items:
        raise OutputInvalid([f"'{stage.name}' is empty: at least one item is required"], completion.content)
    known = {s.id for s in vision.sentences}
    taken = {t.casefold() for t in siblings}
    problems: list[str] = []
    out: list[dict[str, Any]] = []
    for i, raw in enumerate(raw_items):
        body = _check_item(stage, raw, i, known, problems)
        if body is None:
            continue
        body["title"] = unique_title(body["title"], taken)
        taken.add(body["title"].casefold())
        out.append(body)
    if problems:
        raise OutputInvalid(problems, raw=completion.content)
    return out


def _check_item(
    stage: StageDef, raw: Any, index: int, known: set[str], problems: list[str]
) -> dict[str, Any] | None:
    where = f"{stage.name}[{index}]"
    if not isinstance(raw, dict):
        problems.append(f"{where}: expected an object")
        return None
    if isinstance(raw.get("title"), str):
        raw = {**raw, "title": cut_title(raw["title"])}
    try:
        model = OUT_MODELS[stage.kind].model_validate(raw)
    except ValidationError as exc:
        for err in exc.errors()[:6]:
            loc = ".".join(str(p) for p in err["loc"])
            problems.append(f"{where}.{loc}: {err['msg']}")
        return None
    unknown = [s for s in model.sources if s not in known]
    if unknown:
        problems.append(f"{where}.sources: unknown sentence ids {unknown}; use ids like {sorted(known)[:3]}")
        return None
    return model.model_dump(mode="json")
