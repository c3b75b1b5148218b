"""What ``backlogd run`` shows: a live progress bar on a TTY (plain lines otherwise) and a summary
tree at the end. Reads the same committed events the web UI gets.

The bar is ``rich.progress`` (rich finds out whether the stream is a terminal). Text from the model
still goes through ``terminal_safe``: rich passes ESC and the bidi overrides through as they are.
"""

from __future__ import annotations

import re
import sys
import time
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn
from rich.table import Column

from outbox.records import EventRow, ItemRow
from service.broadcaster import Subscription
from vocab import GENERATED_KINDS, KINDS, ItemKind, ItemState, JobStatus

# C0 controls but tab and newline, DEL, C1 controls, and the bidi overrides that reorder what a
# terminal shows ("Trojan Source"): generated text never reaches a terminal with any of them raw.
_UNSAFE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def terminal_safe(text: str) -> str:
    """``text`` with every character a terminal would act on written as a visible escape (``\\x1b``)."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


_SHORT = {kind.value: KINDS[kind].label for kind in GENERATED_KINDS}


class ProgressView:
    """Follows one job: a ``rich`` progress bar on a terminal, one plain line a second otherwise
    (``progress 42.0%  epics 3 …  uploaded 7  <action>``, parsed by scripts), and the errors as lines."""

    def __init__(self, stream: TextIO | None = None, width: int = 28) -> None:
        self.console = Console(file=stream or sys.stdout, highlight=False, soft_wrap=True)
        self.tty = self.console.is_terminal
        self._bar = Progress(
            BarColumn(bar_width=width, table_column=Column(width=width)),
            TaskProgressColumn(),
            # the text, not the bar, gives way on a narrow terminal
            TextColumn(
                "{task.description}",
                markup=False,
                table_column=Column(ratio=1, no_wrap=True, overflow="ellipsis"),
            ),
            console=self.console,
            auto_refresh=False,  # redrawn on each event, from the loop: no refresh thread
            transient=False,
            expand=True,
        )
        self._task: TaskID | None = None
        self._last_plain = 0.0

    async def follow(self, sub: Subscription) -> None:
        """Render events until the job's final event (or the subscription ends)."""
        try:
            while True:
                event = await sub.get()
                if event is None:
                    return
                self.show(event)
                if event.type == "final" or (
                    event.type == "stage"
                    and event.payload.get("status")
                    in (JobStatus.AWAITING_UPLOAD, JobStatus.AWAITING_REVIEW, JobStatus.NEEDS_CREDENTIALS)
                ):
                    return
        finally:
            self._stop()

    def show(self, event: EventRow) -> None:
        if event.type == "progress":
            self._progress(event.payload)
        elif event.type == "stage" and not self.tty:
            self._print(f"stage: {event.payload.get('stage') or event.payload.get('status')}")
        elif event.type == "error":
            self._print(f"error: {event.payload.get('message', '')}")
        elif event.type == "upload" and event.payload.get("state") == ItemState.DEAD:
            self._print(f"upload failed: {event.payload.get('title', '')}: {event.payload.get('error', '')}")
        elif event.type == "final":
            self._progress(event.payload.get("progress") or {}, force=True)
            self._stop()

    def _progress(self, p: dict[str, Any], force: bool = False) -> None:
        if not p:
            return
        pct = float(p.get("progress", 0))
        counts = p.get("counts", {})
        gen = " ".join(f"{_SHORT[k]} {v['generated']}" for k, v in counts.items() if k in _SHORT)
        up = sum(v["uploaded"] for v in counts.values())
        action = terminal_safe(str(p.get("current_action", ""))[:50])
        if self.tty:
            self._draw(pct, f"{gen}  uploaded {up}  {action}")
        elif force or time.monotonic() - self._last_plain >= 1.0:
            self._last_plain = time.monotonic()
            self._print(f"progress {pct:.1f}%  {gen}  uploaded {up}  {action}")

    def _draw(self, pct: float, text: str) -> None:
        if self._task is None:
            self._bar.start()
            self._task = self._bar.add_task(text, total=100.0)
        self._bar.update(self._task, completed=pct, description=text)
        self._bar.refresh()

    def _stop(self) -> None:
        if self._task is not None:
            self._bar.stop()  # the bar stays on screen, the cursor goes below it

    def _print(self, text: str) -> None:
        # Above the live bar on a terminal; exactly the text (no markup, no wrapping) otherwise.
        self.console.print(terminal_safe(text), markup=False, highlight=False)


def summary_tree(items: list[ItemRow], max_stories: int = 3) -> str:
    """A compact tree: epics, features, the first stories of each with their task and test counts."""
    kids: dict[str | None, list[ItemRow]] = {}
    for it in items:
        kids.setdefault(it.parent_id, []).append(it)
    lines = []
    for epic in (i for i in kids.get(None, []) if i.kind == ItemKind.EPIC):
        lines.append(f"Epic: {epic.title}{_mark(epic)}")
        for feat in (i for i in kids.get(epic.id, []) if i.kind == ItemKind.FEATURE):
            lines.append(f"  Feature: {feat.title}{_mark(feat)}")
            stories = [i for i in kids.get(feat.id, []) if i.kind == ItemKind.STORY]
            for story in stories[:max_stories]:
                under = kids.get(story.id, [])
                tasks = sum(1 for i in under if i.kind == ItemKind.TASK)
                tests = sum(1 for i in under if i.kind == ItemKind.TEST_CASE)
                lines.append(f"    Story: {story.title} [{tasks} tasks, {tests} tests]{_mark(story)}")
            if len(stories) > max_stories:
                lines.append(f"    … and {len(stories) - max_stories} more stories")
    return terminal_safe("\n".join(lines))


def _mark(item: ItemRow) -> str:
    if item.ado_id is not None and item.state == ItemState.UPLOADED:
        return f"  (#{item.ado_id})"
    return "" if item.state in (ItemState.HELD, ItemState.UPLOADED) else f"  ({item.state})"
