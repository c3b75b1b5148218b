"""Repair what a model got almost right, guided by the request's own JSON Schema (pure, no I/O).

A real model (or a server that does not enforce the schema) answers with text around the limits:
citations of sentences it was not shown, padded strings, a title a few words too long, a priority of
5. None of that makes the item unusable, so it is fixed here and the fix is reported, instead of
sending the whole answer back. What the schema cannot fix (a missing field, a wrong type that does
not convert) is left for the item's model to reject.

Each repair is one short string (``"sources: dropped unknown ['S9']"``); the caller logs and counts
them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from stages.text import cut_off_reason

_ID = re.compile(r"\bS\d+\b")
_WORDS = re.compile(r"[a-z0-9]{3,}")


def cut_at_word(text: str, limit: int) -> str:
    """Trim to ``limit`` characters on a word boundary (never mid-word unless one word is longer), and
    never ending on a word that leaves the phrase open ('… handled after', '… the')."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit + 1].rsplit(" ", 1)[0]
    cut = (cut if cut and len(cut) <= limit else text[:limit]).rstrip(" ,;:-")
    tokens = cut.split()
    while len(tokens) > 2 and cut_off_reason(" ".join(tokens)) is not None:
        tokens.pop()
        tokens[-1] = tokens[-1].rstrip(",;:-")
    return " ".join(tokens)


def repair_item(
    raw: dict[str, Any], schema: dict[str, Any], inherited: Sequence[str], where: str
) -> tuple[dict[str, Any], list[str]]:
    """Return ``raw`` fixed to fit ``schema`` (one item's schema) and the repairs made.

    ``inherited`` are the citations used when none of the item's own survive (its parent's, or for a
    top-level item the vision sentences closest to its text)."""
    repairs: list[str] = []
    props: dict[str, Any] = schema.get("properties") or {}
    out: dict[str, Any] = {}
    for key, value in raw.items():
        sub = props.get(key)
        if sub is None:  # an extra field: the model would reject it, and nothing reads it
            repairs.append(f"{where}.{key}: dropped unknown field")
            continue
        if key == "sources":
            out[key] = _sources(value, sub, inherited, f"{where}.sources", repairs)
        else:
            out[key] = _fit(value, sub, f"{where}.{key}", repairs)
    return out, repairs


def closest_sentences(text: str, sentences: Sequence[tuple[str, str]], n: int = 1) -> list[str]:
    """Ids of the ``n`` sentences ``(id, text)`` sharing the most words with ``text`` (ties: first)."""
    words = set(_WORDS.findall(text.lower()))
    scored = [(-len(words & set(_WORDS.findall(s.lower()))), i, sid) for i, (sid, s) in enumerate(sentences)]
    return [sid for _, _, sid in sorted(scored)[:n]]


def _sources(
    value: Any, schema: dict[str, Any], inherited: Sequence[str], where: str, repairs: list[str]
) -> list[str]:
    allowed: list[str] = list((schema.get("items") or {}).get("enum") or [])
    given = value if isinstance(value, list) else [value] if isinstance(value, str) else []
    kept: list[str] = []
    dropped: list[str] = []
    for entry in given:
        text = str(entry).strip() if isinstance(entry, str | int) else ""
        found = [text] if text in allowed else [i for i in _ID.findall(text) if i in allowed]
        if not found:
            dropped.append(text[:40])
        for sid in found:
            if sid in kept:
                dropped.append(sid)
            else:
                kept.append(sid)
    if dropped or not isinstance(value, list):
        repairs.append(f"{where}: dropped unknown or repeated citations {dropped[:5]}")
    high = int(schema.get("maxItems") or len(kept) or 1)
    if len(kept) > high:
        repairs.append(f"{where}: kept the first {high} of {len(kept)} citations")
        kept = kept[:high]
    if not kept:
        kept = [s for s in inherited if not allowed or s in allowed][:high] or list(inherited)[:high]
        repairs.append(f"{where}: no valid citation left, inherited {kept}")
    return kept


def _fit(value: Any, schema: dict[str, Any], where: str, repairs: list[str]) -> Any:
    kind = schema.get("type")
    if kind == "string" and isinstance(value, str):
        return _string(value, schema, where, repairs)
    if kind in ("integer", "number"):
        return _number(value, schema, kind, where, repairs)
    if kind == "array" and isinstance(value, list):
        high = schema.get("maxItems")
        if high is not None and len(value) > int(high):
            repairs.append(f"{where}: kept the first {high} of {len(value)} entries")
            value = value[: int(high)]
        item = schema.get("items") or {}
        return [_fit(v, item, f"{where}[{i}]", repairs) for i, v in enumerate(value)]
    if kind == "object" and isinstance(value, dict):
        fixed, more = repair_item(value, schema, (), where)
        repairs.extend(more)
        return fixed
    return value  # a wrong type stays wrong: the item's model says why


def _string(value: str, schema: dict[str, Any], where: str, repairs: list[str]) -> str:
    text = value.strip()
    if text != value:
        repairs.append(f"{where}: trimmed whitespace")
    options = schema.get("enum")
    if options and text not in options:
        match = next((o for o in options if str(o).casefold() == text.casefold()), None)
        if match is not None:
            repairs.append(f"{where}: {text!r} read as {match!r}")
            return str(match)
    high = schema.get("maxLength")
    if high is not None and len(text) > int(high) and not options:
        cut = cut_at_word(text, int(high))
        repairs.append(f"{where}: shortened from {len(text)} to {len(cut)} characters")
        return cut
    return text


def _number(value: Any, schema: dict[str, Any], kind: str, where: str, repairs: list[str]) -> Any:
    number = _as_number(value)
    if number is None:
        return value
    options = schema.get("enum")
    if options:
        nearest = min(options, key=lambda o: (abs(o - number), o))
        if nearest != number:
            repairs.append(f"{where}: {value!r} moved to the nearest allowed value {nearest}")
        return nearest
    low = schema.get("minimum", -math.inf)
    high = schema.get("maximum", math.inf)
    clamped = min(max(number, low), high)
    if kind == "integer":
        clamped = round(clamped)
    if clamped != number:
        repairs.append(f"{where}: {value!r} clamped to {clamped}")
    elif isinstance(value, str):
        repairs.append(f"{where}: {value!r} read as a number")
    return clamped


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None
