"""Reading JSON request bodies within budgets, once per request.

``Content-Type: application/json`` is required for a body (415 otherwise: a cross-site
``<form enctype="text/plain">`` cannot send it); nesting deeper than ``MAX_DEPTH`` and integers
longer than ``MAX_INT_DIGITS`` digits are a 400 naming where they are; the bytes are read under
``server.max_body_bytes`` (413).

Parsed with the standard ``json`` module and its hooks: no JSON library offers a depth or
integer-size budget that reports where the document broke it.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from web.errors import BadRequest

MAX_DEPTH = 32
MAX_INT_DIGITS = 20  # any 64-bit integer fits in 20 characters (with a sign)
_PARSED: web.RequestKey[Any] = web.RequestKey("json_body", object)


class _HugeInt:
    """Stands in for an integer too long to convert; its place in the document is reported."""

    def __init__(self, digits: int) -> None:
        self.digits = digits


def _parse_int(text: str) -> int | _HugeInt:
    return _HugeInt(len(text)) if len(text) > MAX_INT_DIGITS else int(text)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _bad(field: str, message: str) -> BadRequest:
    return BadRequest("invalid_json", f"{field}: {message}", [{"field": field, "message": message}])


def parse_json(raw: bytes) -> Any:
    """The document, or BadRequest: invalid JSON, too deep, or an integer too long."""
    if not raw.strip():
        return {}
    too_deep = f"nested more than {MAX_DEPTH} levels deep"
    if _bracket_depth_exceeds(raw, MAX_DEPTH):
        raise _bad("(body)", too_deep)
    try:
        data = json.loads(raw, parse_int=_parse_int, parse_constant=_refuse_constant)
    except RecursionError:
        raise _bad("(body)", too_deep) from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise BadRequest(
            "invalid_json", f"the body is not valid JSON: {exc}", [{"field": "(body)", "message": str(exc)}]
        ) from None
    _check_ints(data)
    return data


def _bracket_depth_exceeds(raw: bytes, limit: int) -> bool:
    """A cheap upper bound on the nesting (brackets inside strings count too): only when it says
    "maybe too deep" is the document walked exactly, so deep garbage never reaches the decoder."""
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    in_string = escaped = False
    for byte in raw:
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):
            depth += 1
            if depth > limit:
                return True
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return False


def _check_ints(data: Any) -> None:
    stack: list[tuple[str, Any]] = [("", data)]
    while stack:
        path, node = stack.pop()
        if isinstance(node, _HugeInt):
            raise _bad(
                path or "(body)", f"an integer of {node.digits} digits is too long (at most {MAX_INT_DIGITS})"
            )
        if isinstance(node, dict):
            stack.extend((f"{path}.{k}" if path else str(k), v) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((f"{path}[{i}]", v) for i, v in enumerate(node))


def is_json(request: web.Request) -> bool:
    """application/json or a ``+json`` type (merge-patch…): none of them can be sent by a plain
    cross-site form without the browser asking first (a CORS preflight this service never grants)."""
    kind = request.content_type
    return kind == "application/json" or (kind.startswith("application/") and kind.endswith("+json"))


async def read_json(request: web.Request) -> Any:
    """The request's JSON body ({} when empty), parsed once; 415 for a body of another type."""
    if _PARSED in request:
        return request[_PARSED]
    raw = await request.read()  # raises 413 past client_max_size
    if raw.strip() and not is_json(request):
        raise web.HTTPUnsupportedMediaType(
            text=f"send the body as Content-Type: application/json (got {request.content_type!r})"
        )
    data = parse_json(raw)
    request[_PARSED] = data
    return data
