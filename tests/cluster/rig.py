"""Several ``backlogd serve`` processes on one PostgreSQL database, sharing one ADO emulator process
and one fake OpenAI-compatible server process, for the cluster tests and benchmarks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp
import yaml

from tests.fakes.emulator_control import control_headers
from tests.reliability.procs import PYTHON, Child, Children, clean_env

PAT = "cluster-pat"
PROJECT = "Backlogd"


def instance_settings(folder: Path, pg_url: str, limits: dict[str, int], jobs: int) -> dict[str, Any]:
    return {
        "server": {"host": "127.0.0.1", "port": 0, "shutdown_grace_seconds": 2, "max_concurrent_jobs": jobs},
        "database": {
            "path": str(folder / "unused.sqlite3"),
            "url": pg_url,
            "lease_seconds": 1.5,
            "poll_seconds": 0.1,
        },
        "llm": {
            "model": "fake-model",
            "timeout_seconds": 10,
            "max_concurrency": 8,
            "requests_per_minute": 60000,
        },
        "workflow": {"include_qa": True, "limits": limits},
        "azure_devops": {
            "project": PROJECT,
            "upload_retry_attempts": 60,
            "upload_timeout_seconds": 1,
            "lease_seconds": 1.5,
            "max_concurrency": 8,
        },
        "progress": {"heartbeat_seconds": 1, "retry_ms": 100},
        "logging": {"level": "info", "format": "json"},
        "emulator": {"control": True},  # the test reads the emulator's state
    }


class Cluster:
    """The emulator, the fake LLM and ``count`` instances; any instance can be killed (SIGKILL)."""

    def __init__(
        self, folder: Path, pg_url: str, limits: dict[str, int], *, count: int, jobs: int = 4
    ) -> None:
        self.folder = folder
        self.children = Children()
        self.config = folder / "settings.yaml"
        self.config.write_text(
            yaml.safe_dump(instance_settings(folder, pg_url, limits, jobs)), encoding="utf-8"
        )
        self.count = count
        self.emulator_url = ""
        self.llm_url = ""
        self.urls: list[str] = [""] * count
        self.alive: list[bool] = [False] * count
        self._instances: list[Child] = []

    async def start_upstreams(self, llm_latency: float) -> None:
        argv = [PYTHON, "-m", "web.main", "emulator", "--port", "0", "--config", str(self.config)]
        env = clean_env({"AZURE_DEVOPS_PAT": PAT})  # the emulator answers to the instances' PAT only
        emulator = self.children.add(Child("emulator", argv, env, self.folder))
        self.emulator_url = (await emulator.start(r"emulator: (http://\S+)")).group(1)
        llm_argv = [
            PYTHON,
            "-m",
            "tests.reliability.llm_process",
            "--port",
            "0",
            "--latency",
            str(llm_latency),
        ]
        llm = self.children.add(Child("fake-llm", llm_argv, clean_env({}), self.folder))
        port = (await llm.start(r"LISTENING (\d+)")).group(1)
        self.llm_url = f"http://127.0.0.1:{port}/v1"

    def _env(self) -> dict[str, str]:
        return clean_env(
            {
                "BACKLOGD_LLM__PROVIDER": "openai",
                "BACKLOGD_LLM__BASE_URL": self.llm_url,
                "BACKLOGD_LLM__API_KEY_ENV": "null",
                "BACKLOGD_AZURE_DEVOPS__TARGET": "ado",
                "BACKLOGD_AZURE_DEVOPS__ORGANIZATION_URL": self.emulator_url,
                "AZURE_DEVOPS_PAT": PAT,  # the server's PAT: a job taken over by another instance uses it
            }
        )

    async def start_instances(self) -> None:
        argv = [PYTHON, "-m", "web.main", "serve", "--config", str(self.config)]
        for n in range(self.count):
            self._instances.append(self.children.add(Child(f"instance{n}", argv, self._env(), self.folder)))
        for n, child in enumerate(self._instances):
            self.urls[n] = (await child.start(r"backlogd: serving on (http://\S+?)/?\s", within=40)).group(1)
            self.alive[n] = True

    async def kill(self, n: int) -> None:
        self.alive[n] = False
        await self._instances[n].kill()

    def url_for(self, preferred: int) -> str:
        """The first live instance starting at ``preferred`` (round the ring)."""
        for k in range(self.count):
            n = (preferred + k) % self.count
            if self.alive[n]:
                return self.urls[n]
        return self.urls[preferred]

    def pid(self, n: int) -> int:
        return self._instances[n].pid

    def logs(self, n: int) -> str:
        return self._instances[n].logs_tail(4000)

    async def close(self) -> None:
        await self.children.close()

    async def submit(
        self, session: aiohttp.ClientSession, n: int, vision: str, limits: dict[str, int]
    ) -> str:
        body = {
            "vision": vision,
            "azure_devops": {"target": "ado", "organization_url": self.emulator_url, "project": PROJECT},
            "limits": limits,
            "include_qa": True,
            "upload_mode": "streaming",
            "new_copy": True,  # the rig runs one vision many times on purpose
        }
        async with session.post(f"{self.urls[n]}/api/jobs", json=body) as resp:
            assert resp.status == 202, await resp.text()
            job_id: str = (await resp.json())["job_id"]
            return job_id

    async def get(self, session: aiohttp.ClientSession, path: str, n: int = 0) -> dict[str, Any]:
        async with session.get(f"{self.url_for(n)}{path}") as resp:
            assert resp.status == 200, f"GET {path}: {resp.status} {await resp.text()}"
            data: dict[str, Any] = await resp.json()
            return data

    async def emulator_state(self, session: aiohttp.ClientSession) -> dict[str, Any]:
        url, headers = f"{self.emulator_url.rsplit('/', 1)[0]}/_emulator/state", control_headers(PAT)
        async with session.get(url, headers=headers) as resp:
            assert resp.status == 200
            state: dict[str, Any] = await resp.json()
            return state
