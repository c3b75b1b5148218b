"""``backlogd serve`` as a real process for the ops tests, and the systemd notify socket it talks to.

Output goes to files (stderr is searched for secrets and parsed as log lines), never to pipes, so
nothing blocks on a full pipe. The notify socket is an abstract-namespace AF_UNIX datagram socket
(``NOTIFY_SOCKET=@name``), the form systemd itself may hand out.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
URL_LINE = re.compile(r"backlogd: serving on (http://\S+?)/?$", re.MULTILINE)


class NotifySocket:
    """What systemd would receive: every datagram, parsed into its assignments."""

    def __init__(self) -> None:
        self.name = f"backlogd-test-{uuid.uuid4().hex[:12]}"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind("\0" + self.name)
        self.sock.setblocking(False)
        self.messages: list[tuple[float, dict[str, str]]] = []

    @property
    def address(self) -> str:
        return "@" + self.name

    async def wait_for(self, key: str, within: float = 20.0) -> dict[str, str]:
        """The first message (already received or arriving within ``within`` s) that sets ``key``."""
        for _, msg in self.messages:
            if key in msg:
                return msg
        loop = asyncio.get_running_loop()
        async with asyncio.timeout(within):
            while True:
                raw = await loop.sock_recv(self.sock, 4096)
                msg = dict(line.split("=", 1) for line in raw.decode().splitlines() if "=" in line)
                self.messages.append((time.monotonic(), msg))
                if key in msg:
                    return msg

    async def drain(self, seconds: float) -> None:
        """Receive whatever arrives during ``seconds``."""
        with contextlib.suppress(TimeoutError):
            await self.wait_for("__never__", seconds)

    def count(self, key: str) -> int:
        return sum(1 for _, msg in self.messages if key in msg)

    def close(self) -> None:
        self.sock.close()


class Serve:
    """One ``backlogd serve`` process (``start`` again after it stopped: a restart)."""

    def __init__(self, folder: Path, settings: dict[str, Any], env: dict[str, str] | None = None) -> None:
        self.folder = folder
        self.config = folder / "settings.yaml"
        self.config.write_text(yaml.safe_dump(settings), encoding="utf-8")
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("BACKLOGD_", "NOTIFY_", "WATCHDOG_"))
        }
        self.env.update(env or {})
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.base = ""

    @property
    def stdout_path(self) -> Path:
        return self.folder / f"serve.{self.starts}.out"

    @property
    def stderr_path(self) -> Path:
        return self.folder / f"serve.{self.starts}.err"

    def stderr(self) -> str:
        return "".join(
            (self.folder / f"serve.{n}.err").read_text(encoding="utf-8", errors="replace")
            for n in range(1, self.starts + 1)
        )

    async def spawn(self) -> subprocess.Popen[bytes]:
        self.starts += 1
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.proc = await asyncio.to_thread(
                subprocess.Popen,
                [sys.executable, "-m", "web.main", "serve", "--config", str(self.config)],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        return self.proc

    async def start(self, within: float = 30.0) -> str:
        """Spawn and wait for the URL line; returns the base URL (no trailing slash)."""
        proc = await self.spawn()
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = URL_LINE.search(self.stdout_path.read_text(encoding="utf-8", errors="replace"))
            if found:
                self.base = found.group(1)
                return self.base
            if proc.poll() is not None:
                break
            await asyncio.sleep(0.01)
        self.kill()
        raise AssertionError(f"serve did not start; stderr:\n{self.stderr()[-3000:]}")

    async def wait(self, within: float) -> int:
        assert self.proc is not None
        async with asyncio.timeout(within):
            while (code := self.proc.poll()) is None:  # noqa: ASYNC110 (a child process has no event)
                await asyncio.sleep(0.01)
        return code

    async def terminate(self, within: float) -> tuple[int, float]:
        """SIGTERM; returns the exit code and the seconds it took to exit."""
        assert self.proc is not None
        started = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = await self.wait(within)
        return code, time.monotonic() - started

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
