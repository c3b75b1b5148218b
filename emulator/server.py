"""Run the emulator on a real socket (CLI `backlogd emulator`, benchmarks, end-to-end tests)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

from emulator.app import create_emulator_app
from emulator.auth import is_loopback_name
from emulator.config import EmulatorConfig
from emulator.journal import JOURNAL, Journal, replay
from emulator.routing import EMULATOR_STATE
from emulator.state import EmulatorState


@dataclass
class RunningEmulator:
    """A started emulator: `url` is the organization URL clients should use."""

    runner: web.AppRunner
    host: str
    port: int
    config: EmulatorConfig

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.base_url}/{self.config.organization}"

    @property
    def pat(self) -> str | None:
        """The PAT its API answers to (None: any non-empty PAT)."""
        return min(self.config.pats) if self.config.pats else None

    @property
    def state(self) -> EmulatorState:
        return self.runner.app[EMULATOR_STATE]

    async def close(self) -> None:
        await self.runner.cleanup()
        journal = self.runner.app.get(JOURNAL)
        if journal is not None:
            await journal.aclose()


async def serve(
    config: EmulatorConfig, host: str = "127.0.0.1", port: int = 0, journal: Path | None = None
) -> RunningEmulator:
    """Start serving on a loopback address (anything else is a ValueError: the emulator is private);
    `port=0` binds a free port (read it back from `.port`). With a `journal` file, earlier writes are
    replayed first and new ones recorded (state that survives restarts)."""
    if not is_loopback_name(host):
        raise ValueError(f"the emulator listens on loopback addresses only, not {host!r}")
    log = await Journal.open(journal) if journal is not None else None
    runner = web.AppRunner(create_emulator_app(config, log), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        if log is not None:
            await log.aclose()
        raise
    bound = port
    for address in runner.addresses:
        bound = int(address[1])
        break
    running = RunningEmulator(runner, host, bound, config)
    if log is not None:
        pat = next(iter(config.pats), "journal") if config.pats else "journal"
        await replay(log, running.base_url, pat, running.state.reset)
    return running
