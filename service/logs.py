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


def unredact(secret: str | None) -> None:
    """A per-job secret whose job has ended is not kept in memory for the life of the process."""
    _SECRETS.discard(secret or "")


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
    out = stream or sys.stderr
    console = fmt == "console" or (fmt == "auto" and out.isatty())
    common: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    render: list[Any] = (
        [structlog.dev.ConsoleRenderer(colors=False)] if console else [_journald_prefix, _PrefixedJSON()]
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *common,
            structlog.processors.format_exc_info,
            _redact_processor,
            *render,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelNamesMapping()[level.upper()]),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    _route_stdlib(level, common, render, stream)


class _Handler(logging.StreamHandler[TextIO]):
    """Library records (aiohttp, asyncio) as the same lines; without a stream, today's ``sys.stderr``."""

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream)
        self._fixed = stream

    @property
    def stream(self) -> TextIO:
        return self._fixed or sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass  # the base class assigns it in __init__


def _library_event(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A library's free-text message keeps one stable event name; the text goes to ``message``."""
    event["message"] = event.get("event")
    event["event"] = "library_log"
    return event


def _route_stdlib(level: str, common: list[Any], render: list[Any], stream: TextIO | None) -> None:
    """Warnings and errors of libraries that log through ``logging`` become structlog lines too (JSON,
    redacted), so nothing reaches the journal as a bare multi-line traceback."""
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[structlog.stdlib.add_logger_name, _library_event, *common],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            _redact_processor,
            *render,
        ],
    )
    handler = _Handler(stream)
    handler.setFormatter(formatter)
    handler.setLevel(max(logging.WARNING, logging.getLevelNamesMapping()[level.upper()]))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    root.addHandler(handler)
