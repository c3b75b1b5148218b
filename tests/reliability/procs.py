"""Child processes for the reliability suite: start one in its own session, wait for its ready line,
kill its whole group (SIGKILL, like a crash: the process pool dies with it) or stop it with SIGTERM.

Output goes to files in the test's folder (kept for a failure report), never to pipes, so nothing
blocks on a full pipe and nothing is left unclosed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable


class ProcessFailed(RuntimeError):
    """A child exited or stayed silent before printing its ready line."""


class Child:
    """One child process (and its session); ``start`` may be called again after it stopped."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], folder: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.folder = folder
        self.starts = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._out: Path | None = None

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int:
        assert self._proc is not None
        return self._proc.pid

    @property
    def stdout_path(self) -> Path:
        assert self._out is not None
        return self._out

    async def start(self, ready: str, within: float = 20.0) -> re.Match[str]:
        """Start and wait for a stdout line matching ``ready``; returns the match."""
        self.starts += 1
        self._out = self.folder / f"{self.name}.{self.starts}.out"
        err = self.folder / f"{self.name}.{self.starts}.err"
        with self._out.open("wb") as out, err.open("wb") as errf:
            self._proc = await asyncio.to_thread(
                subprocess.Popen,
                self.argv,
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=errf,
                start_new_session=True,
            )
        pattern = re.compile(ready)
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = pattern.search(self._out.read_text(encoding="utf-8", errors="replace"))
            if found:
                return found
            if self._proc.poll() is not None:
                break
            await asyncio.sleep(0.01)
        tail = err.read_text(encoding="utf-8", errors="replace")[-2000:]
        await self.kill()
        raise ProcessFailed(f"{self.name} did not print {ready!r} within {within} s; stderr:\n{tail}")

    async def kill(self) -> None:
        """SIGKILL the whole session (the child and anything it forked), then reap the child."""
        proc = self._proc
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        await asyncio.to_thread(proc.wait)
        self._proc = None

    async def stop(self, grace: float = 10.0) -> int | None:
        """SIGTERM, wait ``grace`` seconds for a clean exit, then SIGKILL what is left of the session."""
        proc = self._proc
        if proc is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = await asyncio.wait_for(asyncio.to_thread(proc.wait), grace)
        except TimeoutError:
            code = None
        await self.kill()
        return code

    def output(self) -> str:
        return self._out.read_text(encoding="utf-8", errors="replace") if self._out else ""

    def logs_tail(self, chars: int = 3000) -> str:
        """The end of the latest stderr, for a failure message."""
        err = self.folder / f"{self.name}.{self.starts}.err"
        return err.read_text(encoding="utf-8", errors="replace")[-chars:] if err.exists() else ""


class Children:
    """Every child of one test; ``close`` stops them all, even after a failure."""

    def __init__(self) -> None:
        self._all: list[Child] = []

    def add(self, child: Child) -> Child:
        self._all.append(child)
        return child

    async def close(self) -> None:
        for child in reversed(self._all):
            await child.kill()


def clean_env(overrides: Mapping[str, str]) -> dict[str, str]:
    """This process's environment without any inherited backlogd settings, plus ``overrides``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKLOGD_") and k != "AZURE_DEVOPS_PAT"}
    env["PYTHONUNBUFFERED"] = "1"
    env.update(overrides)
    return env
