"""structlog, configured once by the CLI: JSON lines in production (with the journald ``<N>``
priority prefix when not on a TTY), a readable console renderer in a terminal. Secrets registered
with ``redact`` are replaced wherever they appear in an event.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

_SECRETS: set[str] = set()
_PRIORITY = {"debug": 7, "info": 6, "warning": 4, "error": 3, "critical": 2}


def redact(secret: str | None) -> None:
    """Never log this value (PATs, API keys, the API token)."""
    if secret and len(secret) >= 6:
        _SECRETS.add(secret)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        for secret in _SECRETS:
            if secret in value:
                value = value.replace(secret, "***")
        return value
    if isinstance(value, dict):
        return {k: _scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub(v) for v in value)
    return value


def _redact_processor(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return {k: _scrub(v) for k, v in event.items()} if _SECRETS else event


def _journald_prefix(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event["_priority"] = _PRIORITY.get(str(event.get("level", "info")), 6)
    return event


class _PrefixedJSON:
    def __init__(self) -> None:
        self._json = structlog.processors.JSONRenderer()

    def __call__(self, logger: Any, name: str, event: MutableMapping[str, Any]) -> str:
        priority = event.pop("_priority", 6)
        return f"<{priority}>" + str(self._json(logger, name, event))


def configure(level: str = "info", fmt: str = "auto", stream: TextIO | None = None) -> None:
    stream = stream or sys.stderr
    console = fmt == "console" or (fmt == "auto" and stream.isatty())
    processors: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        _redact_processor,
    ]
    if console:
        processors.append(structlog.dev.ConsoleRenderer(colors=False))
    else:
        processors += [_journald_prefix, _PrefixedJSON()]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(stream),
        cache_logger_on_first_use=False,
    )
