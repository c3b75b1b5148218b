"""What ``backlogd run`` shows: a live progress bar on a TTY (plain lines otherwise) and a summary
tree at the end. Reads the same committed events the web UI gets.
"""

from __future__ import annotations

import re
import sys
import time
from typing import Any, TextIO

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
    def __init__(self, stream: TextIO | None = None, width: int = 28) -> None:
        self.stream = stream or sys.stdout
        self.tty = self.stream.isatty()
        self.width = width
        self._last_plain = 0.0
        self._last_line = ""

    async def follow(self, sub: Subscription) -> None:
        """Render events until the job's final event (or the subscription ends)."""
        while True:
            event = await sub.get()
            if event is None:
                return
            self.show(event)
            if event.type == "final" or (
                event.type == "stage"
                and event.payload.get("status")
                in (
                    JobStatus.AWAITING_UPLOAD,
                    JobStatus.AWAITING_REVIEW,
                    JobStatus.NEEDS_CREDENTIALS,
                )
            ):
                return

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
            if self.tty:
                self.stream.write("\n")

    def _progress(self, p: dict[str, Any], force: bool = False) -> None:
        if not p:
            return
        pct = float(p.get("progress", 0))
        counts = p.get("counts", {})
        gen = " ".join(f"{_SHORT[k]} {v['generated']}" for k, v in counts.items() if k in _SHORT)
        up = sum(v["uploaded"] for v in counts.values())
        action = terminal_safe(str(p.get("current_action", ""))[:50])
        if self.tty:
            filled = int(self.width * pct / 100)
            bar = "█" * filled + "░" * (self.width - filled)
            line = f"\r{bar} {pct:5.1f}%  {gen}  uploaded {up}  {action}"
            self.stream.write(line.ljust(len(self._last_line)))
            self._last_line = line
            self.stream.flush()
        elif force or time.monotonic() - self._last_plain >= 1.0:
            self._last_plain = time.monotonic()
            self._print(f"progress {pct:.1f}%  {gen}  uploaded {up}  {action}")

    def _print(self, text: str) -> None:
        if self.tty and self._last_line:
            self.stream.write("\r" + " " * len(self._last_line) + "\r")
        self.stream.write(terminal_safe(text) + "\n")
        self.stream.flush()


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
