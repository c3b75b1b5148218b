"""The three processes of the soak on loopback: the ADO emulator, the fake OpenAI-compatible server,
and ``backlogd serve`` (restartable), plus the HTTP calls the test makes to them."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.fakes.emulator_control import control_headers
from tests.reliability.procs import PYTHON, Child, Children, clean_env

PAT = "soak-pat"
PROJECT = "Backlogd"
# Where a job stops by itself: the terminal states, and the two that wait for a person.
SETTLED = frozenset(
    {"completed", "completed_with_errors", "failed", "cancelled", "needs_credentials", "awaiting_upload"}
)


@dataclass(frozen=True)
class Storm:
    """Fault rates of both upstreams (429 with Retry-After, 5xx, resets, lost create responses).

    ``early_grace``: a request arriving this soon after a 429 left the upstream is not counted as
    "before the deadline": it was already sent, or granted its slot and about to be sent, before the
    service could read the 429. Both ends stamp times when their event loop gets to a request, so on a
    loaded 2-CPU machine (five processes, restarts forking a process pool) such arrivals were measured
    up to 30 ms after the 429, now and then more. A client that ignored the pause would keep sending
    all through the remaining 200 ms of every window (the other uploads and LLM calls never stop on
    their own), so the check still catches it.
    """

    throttle: float = 0.10
    error_5xx: float = 0.05
    reset: float = 0.03
    lose_response: float = 0.05
    retry_after: float = 0.3
    early_grace: float = 0.1
    llm_latency: float = 0.05
    seed: int = 7


def service_settings(folder: Path, limits: dict[str, int]) -> dict[str, Any]:
    """Settings for the soak's service; the upstream addresses come as environment overrides."""
    return {
        "server": {"host": "127.0.0.1", "port": 0, "shutdown_grace_seconds": 2, "max_concurrent_jobs": 3},
        "database": {"path": str(folder / "backlogd.sqlite3")},
        "llm": {
            "model": "fake-model",
            "timeout_seconds": 10,
            "max_concurrency": 16,
            "requests_per_minute": 60000,
        },
        "workflow": {"include_qa": True, "limits": limits},
        "azure_devops": {
            "project": PROJECT,
            "upload_retry_attempts": 60,
            # A lease outlives any one upload (a few requests of at most the timeout each), so only a
            # dead owner's lease is ever reclaimed; short, so a restart reclaims within seconds.
            "upload_timeout_seconds": 1,
            "lease_seconds": 4,
            "max_concurrency": 8,
        },
        "progress": {"heartbeat_seconds": 1, "retry_ms": 100},
        "emulator": {"control": True},  # the rig sets the emulator's faults and reads its state
        "logging": {"level": "info", "format": "json"},
    }


class Rig:
    """Starts and stops the processes; the service can be killed and started again."""

    def __init__(self, folder: Path, storm: Storm, limits: dict[str, int]) -> None:
        self.folder = folder
        self.storm = storm
        self.children = Children()
        self.config = folder / "settings.yaml"
        self.config.write_text(yaml.safe_dump(service_settings(folder, limits)), encoding="utf-8")
        self.db_path = folder / "backlogd.sqlite3"
        self.emulator_url = ""
        self.llm_url = ""
        self.service_url = ""
        self._service: Child | None = None
        self._llm: Child | None = None

    # ----- processes --------------------------------------------------------------------------

    async def start_upstreams(self) -> None:
        s = self.storm
        emulator = self.children.add(
            Child(
                "emulator",
                [PYTHON, "-m", "web.main", "emulator", "--port", "0", "--config", str(self.config)],
                clean_env({"AZURE_DEVOPS_PAT": PAT}),  # the emulator answers to the service's PAT only
                self.folder,
            )
        )
        found = await emulator.start(r"emulator: (http://\S+)")
        self.emulator_url = found.group(1)
        llm_argv = [
            PYTHON,
            "-m",
            "tests.reliability.llm_process",
            "--port",
            "0",
            "--latency",
            str(s.llm_latency),
        ]
        llm_argv += ["--fault-rate-429", str(s.throttle), "--retry-after", str(s.retry_after)]
        llm_argv += ["--fault-rate-500", str(s.error_5xx), "--fault-rate-reset", str(s.reset)]
        llm_argv += ["--early-grace", str(s.early_grace), "--seed", str(s.seed)]
        self._llm = self.children.add(Child("fake-llm", llm_argv, clean_env({}), self.folder))
        found = await self._llm.start(r"LISTENING (\d+)")
        self.llm_url = f"http://127.0.0.1:{found.group(1)}/v1"

    def service_env(self) -> dict[str, str]:
        return clean_env(
            {
                "BACKLOGD_LLM__PROVIDER": "openai",
                "BACKLOGD_LLM__BASE_URL": self.llm_url,
                "BACKLOGD_LLM__API_KEY_ENV": "null",
                "BACKLOGD_LLM__MAX_ATTEMPTS": "8",
                "BACKLOGD_AZURE_DEVOPS__TARGET": "ado",
                "BACKLOGD_AZURE_DEVOPS__ORGANIZATION_URL": self.emulator_url,
                "BACKLOGD_AZURE_DEVOPS__PROJECT": PROJECT,
                "AZURE_DEVOPS_PAT": PAT,  # the server's PAT: resumed jobs use it after a restart
            }
        )

    async def start_service(self) -> None:
        if self._service is None:
            argv = [PYTHON, "-m", "web.main", "serve", "--config", str(self.config)]
            self._service = self.children.add(Child("service", argv, self.service_env(), self.folder))
        found = await self._service.start(r"backlogd: serving on (http://\S+?)/?\s")
        self.service_url = found.group(1)

    async def kill_service(self) -> None:
        assert self._service is not None
        await self._service.kill()

    async def stop_service(self) -> int | None:
        assert self._service is not None
        return await self._service.stop()

    async def stop_llm(self) -> dict[str, Any]:
        """SIGTERM the fake LLM and read the ``STATS`` line it prints on the way out."""
        assert self._llm is not None
        await self._llm.stop()
        for line in self._llm.output().splitlines():
            if line.startswith("STATS "):
                stats: dict[str, Any] = json.loads(line.removeprefix("STATS "))
                return stats
        raise AssertionError(f"the fake LLM printed no STATS line: {self._llm.output()[-500:]}")

    def service_logs(self) -> str:
        return self._service.logs_tail() if self._service else ""

    async def close(self) -> None:
        await self.children.close()

    # ----- HTTP -------------------------------------------------------------------------------

    async def set_faults(self, session: aiohttp.ClientSession) -> None:
        s = self.storm
        faults = {
            "throttle": s.throttle,
            "error_503": s.error_5xx,
            "reset": s.reset,
            "lose_response": s.lose_response,
            "retry_after_seconds": s.retry_after,
            "early_grace_seconds": s.early_grace,
            "seed": s.seed,
            "routes": ["create", "testplan"],
        }
        url, headers = f"{self._emulator_base}/_emulator/faults", control_headers(PAT)
        async with session.post(url, json=faults, headers=headers) as resp:
            assert resp.status == 200, await resp.text()

    async def emulator_state(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        url, headers = f"{self._emulator_base}/_emulator/state", control_headers(PAT)
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 200
            state: dict[str, Any] = await resp.json()
            return state

    @property
    def _emulator_base(self) -> str:
        return self.emulator_url.rsplit("/", 1)[0]  # the org URL minus the organization

    async def submit(self, session: aiohttp.ClientSession, vision: str, limits: dict[str, int]) -> str:
        body = {
            "vision": vision,
            # No per-job PAT: it is held in memory only, so a job resumed after a crash would wait for
            # credentials (needs_credentials). The service's own PAT (AZURE_DEVOPS_PAT) survives restarts.
            "azure_devops": {"target": "ado", "organization_url": self.emulator_url, "project": PROJECT},
            "limits": limits,
            "include_qa": True,
            "upload_mode": "streaming",
            "new_copy": True,  # the rig runs one vision many times on purpose
        }
        async with session.post(f"{self.service_url}/api/jobs", json=body) as resp:
            assert resp.status == 202, await resp.text()
            job_id: str = (await resp.json())["job_id"]
            return job_id

    async def get(self, session: aiohttp.ClientSession, path: str) -> dict[str, Any]:
        async with session.get(f"{self.service_url}{path}") as resp:
            assert resp.status == 200, f"GET {path}: {resp.status} {await resp.text()}"
            data: dict[str, Any] = await resp.json()
            return data

    def integrity(self) -> str:
        """``PRAGMA integrity_check`` of the service's database ("ok" when sound)."""
        conn = sqlite3.connect(self.db_path)
        try:
            return "; ".join(str(r[0]) for r in conn.execute("PRAGMA integrity_check").fetchall())
        finally:
            conn.close()
