"""Field value rules: coercion by field kind, allowed values, Title length, and the tag list rules."""

from __future__ import annotations

from typing import Any

from emulator.errors import AdoError, rule_error
from emulator.processes import FieldDef
from emulator.state import split_tags

MAX_STRING = 255
MAX_TAG_LENGTH = 400
MAX_TAGS = 100


def utf16_units(text: str) -> int:
    """String limits count UTF-16 code units: a character beyond U+FFFF (an emoji) counts two."""
    return len(text.encode("utf-16-le")) // 2


def _invalid(field: FieldDef, value: Any) -> AdoError:
    return AdoError(
        400,
        "WorkItemFieldInvalidException",
        f"The field '{field.name}' contains the value '{value}' that is not in the correct format.",
    )


def coerce(field: FieldDef, value: Any) -> Any:
    """Numbers sent as strings are coerced (the service does so); anything else wrong is a 400."""
    if value is None:
        return None
    if field.kind == "integer":
        result: Any = _to_number(field, value, int)
    elif field.kind == "double":
        result = _to_number(field, value, float)
    elif field.kind == "identity":
        result = value if isinstance(value, dict | str) else _fail(field, value)
    elif isinstance(value, bool) or not isinstance(value, str | int | float):
        raise _invalid(field, value)
    else:
        result = str(value)
    if field.kind == "string" and utf16_units(result) > MAX_STRING:
        raise rule_error(field.ref, field.name, "InvalidTooLong")
    if field.allowed and result not in field.allowed:
        raise rule_error(field.ref, field.name, "LimitedToValues")
    return result


def _fail(field: FieldDef, value: Any) -> Any:
    raise _invalid(field, value)


def _to_number(field: FieldDef, value: Any, kind: type[int] | type[float]) -> int | float:
    if isinstance(value, bool):
        raise _invalid(field, value)
    try:
        number = float(value)
    except (TypeError, ValueError) as exc:
        raise _invalid(field, value) from exc
    if kind is int:
        if not number.is_integer():
            raise _invalid(field, value)
        return int(number)
    return number


def normalize_tags(raw: Any) -> list[str]:
    """Tags are `;`-separated; each ≤400 chars, no commas, ≤100; duplicates dropped case-insensitively."""
    if not isinstance(raw, str):
        raise AdoError(400, "WorkItemFieldInvalidException", "The field 'Tags' must be a string.")
    result: list[str] = []
    seen: set[str] = set()
    for tag in split_tags(raw):
        if "," in tag:
            raise AdoError(400, "InvalidTagNameException", f"TF400935: The tag name '{tag}' is not valid.")
        if len(tag) > MAX_TAG_LENGTH:
            raise AdoError(
                400, "InvalidTagNameException", f"TF400935: The tag name '{tag[:40]}…' is too long."
            )
        if tag.casefold() not in seen:
            seen.add(tag.casefold())
            result.append(tag)
    if len(result) > MAX_TAGS:
        raise AdoError(
            400,
            "TooManyTagsException",
            "TF401243: Failed to save work item because too many new tags were added to the work item.",
        )
    return result


def join_tags(tags: list[str]) -> str:
    return "; ".join(tags)
