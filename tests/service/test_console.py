"""What ``backlogd run`` prints while it follows a job: plain, parseable lines when stdout is not a
terminal, a rich progress bar when it is, and never a raw control character from model text."""

from __future__ import annotations

import io
from typing import Any

import pytest

from outbox.records import EventRow
from service.console import ProgressView
from vocab import ItemKind

HOSTILE = "Writing \x1b[2Jstories\u202e"


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _event(seq: int, type_: str, payload: dict[str, Any]) -> EventRow:
    return EventRow(job_id="j", seq=seq, type=type_, payload=payload, created_at=0.0)


def _progress(percent: float, action: str = HOSTILE) -> dict[str, Any]:
    counts = {kind.value: {"generated": 2, "uploaded": 1, "failed": 0} for kind in ItemKind}
    return {"progress": percent, "counts": counts, "current_action": action, "status": "running"}


def test_plain_lines_when_not_a_terminal() -> None:
    """Not a TTY: one ``progress`` line (throttled, the final one forced), ``stage:`` and ``error:``
    lines, exactly as scripts parse them, with control characters written as visible escapes."""
    out = io.StringIO()
    view = ProgressView(out)
    view.show(_event(1, "stage", {"stage": "epics"}))
    view.show(_event(2, "progress", _progress(10.0)))
    view.show(_event(3, "progress", _progress(20.0)))  # within the second: not printed
    view.show(_event(4, "error", {"message": "boom\x07"}))
    view.show(_event(5, "final", {"progress": _progress(100.0, "Finished")}))
    lines = out.getvalue().splitlines()
    counts = "epics 2 features 2 stories 2 tasks 2 tests 2  uploaded 7"
    assert lines == [
        "stage: epics",
        f"progress 10.0%  {counts}  Writing \\x1b[2Jstories\\u202e",
        "error: boom\\x07",
        f"progress 100.0%  {counts}  Finished",
    ]


def test_a_progress_bar_on_a_terminal_without_raw_control_characters(monkeypatch: pytest.MonkeyPatch) -> None:
    """A TTY gets rich's bar with the percentage and the counts; the model's ESC and bidi override
    arrive escaped, and an error is printed as its own line."""
    monkeypatch.setenv("COLUMNS", "200")  # wide enough for the whole action
    out = _Terminal()
    view = ProgressView(out)
    view.show(_event(1, "progress", _progress(50.0)))
    view.show(_event(2, "error", {"message": "boom"}))
    view.show(_event(3, "final", {"progress": _progress(100.0, "Finished")}))
    text = out.getvalue()
    assert "━" in text and " 50%" in text and "100%" in text and "epics 2" in text
    assert "\\x1b[2J" in text and "\x1b[2J" not in text and "\u202e" not in text
    assert "error: boom" in text
