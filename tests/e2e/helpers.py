"""Process helpers for end-to-end tests: the ``backlogd`` command and the ADO emulator as real processes.

Each child runs in its own process group so a test can SIGKILL it (and only it) mid-flight.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from tests.fakes.emulator_control import control_headers

ROOT = Path(__file__).resolve().parents[2]


def backlogd_command(*args: str) -> list[str]:
    """The ``backlogd`` console script's entry point, run by this interpreter (so the same virtualenv)."""
    return [sys.executable, "-m", "web.main", *args]


E2E_PAT = "e2e-pat"  # the PAT the emulator process and the uploader share


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BACKLOGD_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    env.update(extra or {})
    return env


async def spawn(cmd: Sequence[str], env: Mapping[str, str], cwd: Path) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        *cmd,
        env=dict(env),
        cwd=cwd,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )


async def read_line_with(proc: asyncio.subprocess.Process, prefix: str, limit: float = 20.0) -> str:
    """The first stdout line starting with ``prefix`` (without it); fails if the process ends first."""
    assert proc.stdout is not None
    async with asyncio.timeout(limit):
        while line := (await proc.stdout.readline()).decode():
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
    err = (await proc.stderr.read()).decode() if proc.stderr else ""
    raise AssertionError(f"process ended (rc={await proc.wait()}) without printing {prefix!r}: {err[-2000:]}")


def kill9(proc: asyncio.subprocess.Process) -> None:
    """SIGKILL the child's whole process group (its process-pool workers die with it)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


async def finish(proc: asyncio.subprocess.Process, limit: float = 30.0) -> tuple[int, str, str]:
    """Wait for the child to exit on its own; returns (rc, stdout, stderr)."""
    try:
        out, err = await asyncio.wait_for(proc.communicate(), limit)
    except TimeoutError:
        kill9(proc)
        await proc.wait()
        raise
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def reap(proc: asyncio.subprocess.Process) -> None:
    """Kill (if still running) and wait, draining the pipes so no transport is left open."""
    if proc.returncode is None:
        kill9(proc)
    await proc.communicate()


@dataclass
class EmulatorProcess:
    """``backlogd emulator`` in its own process: it outlives the uploader being killed."""

    proc: asyncio.subprocess.Process
    org_url: str
    session: aiohttp.ClientSession

    @property
    def base_url(self) -> str:
        return self.org_url.rsplit("/", 1)[0]

    async def state(self) -> dict[str, Any]:
        headers = control_headers(E2E_PAT)
        async with self.session.get(f"{self.base_url}/_emulator/state", headers=headers) as resp:
            data: dict[str, Any] = await resp.json()
            return data

    async def set_faults(self, **faults: Any) -> None:
        url, headers = f"{self.base_url}/_emulator/faults", control_headers(E2E_PAT)
        async with self.session.post(url, json=faults, headers=headers) as resp:
            assert resp.status == 200, await resp.text()


@contextlib.asynccontextmanager
async def emulator_process(config: Path, cwd: Path) -> AsyncIterator[EmulatorProcess]:
    """Start ``backlogd emulator --port 0`` with the given settings file (``emulator.control: true``)
    and wait until it listens; it answers to ``E2E_PAT``."""
    command = backlogd_command("emulator", "--port", "0", "--config", str(config))
    proc = await spawn(command, child_env({"AZURE_DEVOPS_PAT": E2E_PAT}), cwd)
    try:
        line = await read_line_with(proc, "emulator:")
        async with aiohttp.ClientSession() as session:
            yield EmulatorProcess(proc, line.split()[0], session)
    finally:
        await reap(proc)
