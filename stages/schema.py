"""The JSON Schema of one stage request: everything the code checks, said where a model can see it.

A constrained-decoding server (OpenAI structured outputs, llama.cpp, vLLM, Ollama >= 0.5) compiles
this schema to a grammar, so what it emits is valid and bounded by construction: ``sources`` items are
an ``enum`` of the sentence ids shown in that prompt, numbers have their ranges (story points their
Fibonacci values), arrays their sizes, and every string a ``maxLength`` so a small model cannot ramble
until ``max_tokens``. Strict-mode rules hold: every object has ``additionalProperties: false`` and
requires all its properties. Pure; the same dict goes into the prompt text in the other modes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from stages.models import ACTIVITIES, STORY_POINTS

TITLE_SCHEMA_MAX = 100  # what we ask for; models.TITLE_MAX (ADO's field) bounds what we accept
DESCRIPTION_MAX = 400
SENTENCE_MAX = 200
MAX_CRITERIA = 4
MAX_STEPS = 6
PRIORITY = {"type": "integer", "minimum": 1, "maximum": 4}
# Patterns bound each part and exclude quotes and backslashes: a grammar built from ``.`` lets a model
# write a raw '"' into the JSON string (seen with llama.cpp), which ends the string mid-sentence. Each
# part but the last also excludes the comma that ends it, so a grammar never has to guess where a part
# stops: an ambiguous pattern ("Given .* When .*") multiplies llama.cpp's grammar stacks and slowed
# generation to under 1 token/s.
_PART = r'[^,"\\\n]'
_LAST = r'[^"\\\n]'
USER_STORY_PATTERN = rf"^As an? {_PART}{{1,40}}, I want {_PART}{{1,100}}, so that {_LAST}{{1,100}}$"
CRITERION_PATTERN = rf"^Given {_PART}{{1,80}}, When {_PART}{{1,80}}, Then {_LAST}{{1,80}}$"


def _text(max_length: int, min_length: int = 1, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "minLength": min_length, "maxLength": max_length, **extra}


def _obj(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


def item_schema(kind: str, source_ids: Sequence[str]) -> dict[str, Any]:
    """The schema of one item of ``kind`` whose ``sources`` may only cite ``source_ids``."""
    ids = list(dict.fromkeys(source_ids)) or ["S1"]
    common: dict[str, Any] = {
        "title": _text(TITLE_SCHEMA_MAX, 3),
        "description": _text(DESCRIPTION_MAX),
        "sources": {
            "type": "array",
            "items": {"type": "string", "enum": ids, "maxLength": max(len(i) for i in ids)},
            "minItems": 1,
            "maxItems": len(ids),  # no more distinct citations than sentences shown
            "description": "Ids of the vision sentences this item derives from",
        },
    }
    own: dict[str, Any]
    if kind == "epic":
        own = {"priority": PRIORITY, "business_value": {"type": "integer", "minimum": 1, "maximum": 100}}
    elif kind == "feature":
        own = {"priority": PRIORITY}
    elif kind == "story":
        own = {
            "user_story": _text(300, pattern=USER_STORY_PATTERN),
            "acceptance_criteria": {
                "type": "array",
                "items": _text(300, pattern=CRITERION_PATTERN),
                "minItems": 3,
                "maxItems": MAX_CRITERIA,
            },
            "story_points": {"type": "integer", "enum": list(STORY_POINTS)},
            "priority": PRIORITY,
        }
    elif kind == "task":
        own = {
            "estimate_hours": {"type": "number", "minimum": 0.5, "maximum": 40},
            "activity": {"type": "string", "enum": list(ACTIVITIES), "maxLength": 16},
        }
    elif kind == "test_case":
        step = _obj({"action": _text(SENTENCE_MAX), "expected": _text(SENTENCE_MAX)})
        own = {
            "preconditions": _text(SENTENCE_MAX),
            "steps": {"type": "array", "items": step, "minItems": 2, "maxItems": MAX_STEPS},
            "priority": PRIORITY,
        }
    else:
        raise ValueError(f"no schema for item kind {kind!r}")
    return _obj({**common, **own})


def request_schema(stage_name: str, kind: str, max_items: int, source_ids: Sequence[str]) -> dict[str, Any]:
    """``{"<stage>": [<item>, ...]}`` with 1..max_items items."""
    items = {"type": "array", "items": item_schema(kind, source_ids), "minItems": 1, "maxItems": max_items}
    return _obj({stage_name: items})
