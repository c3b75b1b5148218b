"""Find the JSON in an LLM answer: plain JSON, a fenced block, or JSON wrapped in prose.

Pure functions, no I/O. Servers that ignore ``response_format`` (or models that talk anyway) put
prose, ```` ```json ```` fences or ``<think>`` blocks around the answer; we accept those and reject
only text that holds no parseable JSON at all.
"""

from __future__ import annotations

import json
import re
from typing import Any

from stages.errors import OutputInvalid

_FENCE = re.compile(r"```[ \t]*(?:json|JSON|json5)?[ \t]*\r?\n?(.*?)```", re.DOTALL)
_THINK = re.compile(r"^\s*<think>.*?</think>", re.DOTALL | re.IGNORECASE)  # reasoning models lead with it
_DECODER = json.JSONDecoder()
_PARSE_ERRORS = (ValueError, RecursionError)  # JSONDecodeError is a ValueError; deep nesting recurses


def extract_json(text: str) -> Any:
    """Return the JSON value in ``text``, or raise ``OutputInvalid`` saying why there is none.

    Order: the whole text; then each fenced block; then the longest balanced object/array found by
    scanning the text (prose before and after is ignored)."""
    ok, value = _loads(text.strip())
    if ok:
        return value
    cleaned = _THINK.sub("", text, count=1).strip()
    if not cleaned:
        raise OutputInvalid(["the answer is empty: expected a JSON object"], raw=text)
    ok, value = _loads(cleaned)
    if ok:
        return value
    for block in _FENCE.findall(cleaned):
        ok, value = _loads(block.strip())
        if ok:
            return value
    found = find_json_values(cleaned)
    if found:
        return max(found, key=lambda span: span[1] - span[0])[2]
    raise OutputInvalid([_why_not(cleaned)], raw=text)


def find_json_values(text: str) -> list[tuple[int, int, Any]]:
    """Every top-level JSON object or array embedded in ``text`` as ``(start, end, value)``.

    Scans left to right; a successfully parsed value is skipped as a whole, so nested values are not
    reported separately. A bracket that never closes (a cut-off answer) ends the scan: the values
    inside it are fragments, not answers."""
    out: list[tuple[int, int, Any]] = []
    i = 0
    n = len(text)
    while i < n:
        i = _next_open(text, i)
        if i < 0:
            break
        try:
            value, end = _DECODER.raw_decode(text, i)
        except _PARSE_ERRORS as exc:
            if _cut_off(text, exc):
                break
            i += 1
            continue
        out.append((i, end, value))
        i = end
    return out


def _next_open(text: str, start: int) -> int:
    brace = text.find("{", start)
    bracket = text.find("[", start)
    if brace < 0:
        return bracket
    if bracket < 0:
        return brace
    return min(brace, bracket)


def _cut_off(text: str, exc: Exception) -> bool:
    """Whether a parse failure is the end of the text arriving mid-value (a truncated answer)."""
    if not isinstance(exc, json.JSONDecodeError):
        return False
    return exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")


def _loads(text: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(text)
    except _PARSE_ERRORS:
        return False, None


def _why_not(text: str) -> str:
    """A one-line diagnosis for a repair turn: where parsing of the first candidate failed."""
    start = _next_open(text, 0)
    if start < 0:
        return "no JSON found in the answer: expected a JSON object, got prose only"
    try:
        _DECODER.raw_decode(text, start)
    except json.JSONDecodeError as exc:
        if _cut_off(text, exc):
            return "the answer's JSON is incomplete: the text ends before the value is closed"
        return f"the answer is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
    except _PARSE_ERRORS as exc:
        return f"the answer is not valid JSON: {type(exc).__name__}"
    return "no parseable JSON found in the answer"  # pragma: no cover - a candidate would have parsed
