"""Build a valid instance of a JSON Schema, with text that reads like a backlog.

Handles the subset pydantic emits and OpenAI strict mode uses: local ``$ref``/``$defs``, ``allOf``/
``anyOf``/``oneOf``, ``const``/``enum``, objects, arrays with ``minItems``/``maxItems``, strings with
lengths (no ``pattern``), integers/numbers with bounds. Properties named like the backlog fields
(``user_story``, ``acceptance_criteria``, ``story_points``, ``sources``...) get content that passes
the domain validators the schema cannot express. Deterministic for a given seed.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import Any

from stages.text import DANGLING_WORDS, SOFT_PREPOSITIONS

FIBONACCI = (1, 2, 3, 5, 8, 13, 21)
_SOURCE_ID = re.compile(r"\[(S\d+)\]")
_WORD = re.compile(r"[A-Za-z][A-Za-z\-]{3,}")


def _split(text: str) -> list[str]:
    return text.split()


_STOP = frozenset(
    _split(
        "that this with from have will into they their there which about when then what your than them "
        "these those were been being also each must should would could shall only more most such just over "
        "under json schema answer object array items item none title description sources given list return "
        "vision sentence sentences reply valid"
    )
)
_FALLBACK = _split(
    "catalog checkout payment invoice report dashboard search filter export import profile account "
    "notification schedule inventory order shipment review rating message upload archive audit "
    "billing calendar ledger onboarding permission session analytics workflow approval"
)
_ROLES = ("customer", "administrator", "support agent", "product owner", "analyst", "visitor")
# a title must not end on one of these (the quality gate sends such an answer back)
_DANGLING = DANGLING_WORDS | SOFT_PREPOSITIONS


@dataclass
class Faker:
    """Generates instances; ``words`` and ``source_ids`` come from the request's user message."""

    root: dict[str, Any]
    words: list[str]
    source_ids: list[str]
    rng: random.Random
    defs: dict[str, Any] = field(default_factory=dict)
    roles: tuple[str, ...] = _ROLES  # the vision's users when the prompt names them

    @classmethod
    def for_text(cls, schema: dict[str, Any], text: str, seed: int, roles: tuple[str, ...] = ()) -> Faker:
        found = [w.lower() for w in _WORD.findall(text) if w.lower() not in _STOP | _DANGLING]
        words = list(dict.fromkeys(found)) or list(_FALLBACK)
        if len(words) < 12:
            words += [w for w in _FALLBACK if w not in words]
        ids = list(dict.fromkeys(_SOURCE_ID.findall(text))) or ["S1"]
        faker = cls(schema, words, ids, random.Random(seed), roles=roles or _ROLES)
        faker._collect_defs(schema)
        return faker

    def instance(self) -> Any:
        return self.value(self.root, "", 0)

    def value(self, schema: Any, name: str, depth: int) -> Any:
        if not isinstance(schema, dict) or depth > 24:
            return None
        schema = self._resolve(schema)
        for key in ("allOf", "anyOf", "oneOf"):
            if schema.get(key):
                return self._combined(schema, key, name, depth)
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return self.rng.choice(list(schema["enum"]))
        kind = self._type(schema)
        if kind == "object":
            return self._object(schema, depth)
        if kind == "array":
            return self._array(schema, name, depth)
        if kind == "integer":
            return self._integer(schema, name)
        if kind == "number":
            return self._number(schema, name)
        if kind == "boolean":
            return True
        if kind == "null":
            return None
        return self._string(schema, name)

    # -- structure -------------------------------------------------------------------------------

    def _collect_defs(self, node: Any) -> None:
        if isinstance(node, dict):
            for key in ("$defs", "definitions"):
                if isinstance(node.get(key), dict):
                    self.defs.update(node[key])
            for child in node.values():
                self._collect_defs(child)
        elif isinstance(node, list):
            for child in node:
                self._collect_defs(child)

    def _resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        for _ in range(32):
            ref = schema.get("$ref")
            if not isinstance(ref, str) or not ref.startswith("#"):
                return schema
            target = _pointer(self.root, ref[1:]) or self.defs.get(ref.rsplit("/", 1)[-1])
            if not isinstance(target, dict):
                return {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema

    def _combined(self, schema: dict[str, Any], key: str, name: str, depth: int) -> Any:
        options = [self._resolve(o) for o in schema[key] if isinstance(o, dict)]
        rest = {k: v for k, v in schema.items() if k != key}
        if key == "allOf":
            merged: dict[str, Any] = dict(rest)
            for option in options:
                merged = _merge(merged, option)
            return self.value(merged, name, depth + 1)
        non_null = [o for o in options if o.get("type") != "null"] or options
        return self.value({**rest, **non_null[0]}, name, depth + 1)

    @staticmethod
    def _type(schema: dict[str, Any]) -> str:
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if isinstance(kind, str):
            return kind
        if "properties" in schema:
            return "object"
        return "array" if "items" in schema else "string"

    def _object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        props = schema.get("properties") or {}
        return {key: self.value(sub, key, depth + 1) for key, sub in props.items()}

    def _array(self, schema: dict[str, Any], name: str, depth: int) -> list[Any]:
        low = int(schema.get("minItems", 0))
        high = schema.get("maxItems")
        if name == "sources":
            count = max(low, min(2, len(self.source_ids)), 1)
            picked = self.rng.sample(self.source_ids, min(count, len(self.source_ids)))
            return (picked * count)[:count] if count > len(picked) else picked
        count = int(high) if high is not None else max(low, 3 if depth > 0 else 1)
        items = schema.get("items", {})
        if name == "acceptance_criteria":
            return [self._criterion(i) for i in range(count)]
        return [self.value(items, _singular(name), depth + 1) for _ in range(count)]

    # -- scalars ---------------------------------------------------------------------------------

    def _integer(self, schema: dict[str, Any], name: str) -> int:
        low, high = _bounds(schema, integer=True)
        if name == "story_points":
            allowed = [p for p in FIBONACCI if low <= p <= high] or [math.ceil(low)]
            return self.rng.choice(allowed[:5])
        if name == "priority":
            return int(min(max(2, low), high))
        top = min(high, low + 50)
        return self.rng.randint(int(low), int(top))

    def _number(self, schema: dict[str, Any], name: str) -> float:
        low, high = _bounds(schema, integer=False)
        if name.endswith("hours"):
            return float(min(max(low, self.rng.choice((2, 4, 6, 8))), high))
        return round(self.rng.uniform(low, min(high, low + 100)), 2)

    def _string(self, schema: dict[str, Any], name: str) -> str:
        fmt = schema.get("format")
        if fmt in ("date-time", "date", "uuid", "email", "uri"):
            return _FORMATS[fmt]
        if name == "user_story":
            role = self.rng.choice(self.roles)
            text = f"As a {role}, I want to {self._phrase(4)}, so that I can {self._phrase(3)}"
        elif name in ("title", "name"):
            text = self._phrase(self.rng.randint(3, 5)).capitalize()
        elif name == "acceptance_criterion":
            text = self._criterion(0)
        else:
            text = f"{self._phrase(self.rng.randint(6, 10)).capitalize()}."
        return _fit(text, schema)

    def _phrase(self, n: int) -> str:
        return " ".join(self.rng.sample(self.words, min(n, len(self.words))))

    def _criterion(self, i: int) -> str:
        return f"Given {self._phrase(3)}, When the user {self._phrase(2)}, Then {self._phrase(3)} is shown"


_FORMATS = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "email": "someone@example.com",
    "uri": "https://example.com/item",
}


def _pointer(root: dict[str, Any], path: str) -> Any:
    node: Any = root
    for part in [p for p in path.split("/") if p]:
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    out = {**a, **b}
    if "properties" in a or "properties" in b:
        out["properties"] = {**a.get("properties", {}), **b.get("properties", {})}
    if "required" in a or "required" in b:
        out["required"] = list(dict.fromkeys([*a.get("required", []), *b.get("required", [])]))
    return out


def _bounds(schema: dict[str, Any], *, integer: bool) -> tuple[float, float]:
    step = 1.0 if integer else 0.5
    low = float(schema.get("minimum", -math.inf))
    high = float(schema.get("maximum", math.inf))
    if "exclusiveMinimum" in schema:
        low = max(low, float(schema["exclusiveMinimum"]) + step)
    if "exclusiveMaximum" in schema:
        high = min(high, float(schema["exclusiveMaximum"]) - step)
    if math.isinf(low):
        low = 1.0 if math.isinf(high) or high >= 1 else high - 10
    if math.isinf(high):
        high = low + 100
    if integer:
        low, high = float(math.ceil(low)), float(math.floor(high))
    if high < low:  # a tiny exclusive range: its midpoint is still inside
        mid = (float(schema.get("exclusiveMinimum", low)) + float(schema.get("exclusiveMaximum", low))) / 2
        return mid, mid
    return low, high


def _fit(text: str, schema: dict[str, Any]) -> str:
    low = int(schema.get("minLength", 0))
    high = schema.get("maxLength")
    while len(text) < low:
        text += " details"
    if high is not None and len(text) > int(high):
        text = text[: int(high)].rstrip() or text[: int(high)]
    return text


def _singular(name: str) -> str:
    if name == "acceptance_criteria":
        return "acceptance_criterion"
    return name[:-1] if name.endswith("s") else name
