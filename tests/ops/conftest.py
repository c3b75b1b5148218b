"""Fixtures for the ops tests: settings in tmp_path, real services, the app on loopback with an
injected clock for the limits, and in-process upstreams (fake LLM, ADO emulator) for served processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from emulator.config import EmulatorConfig
from emulator.server import RunningEmulator, serve
from service.composition import Services, build_services
from service.settings import Settings
from tests.ops.procs import Serve
from web.app import create_app

TOKEN = "ops-test-token-0123456789abcdef"
SMALL = {
    "max_epics": 2,
    "max_features_per_epic": 2,
    "max_stories_per_feature": 2,
    "max_tasks_per_story": 1,
    "max_test_cases_per_story": 1,
}
VISION = "# Bike shop\nCustomers book repairs online. Mechanics see the repair queue. Owners track revenue."


class Clock:
    """A clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make_settings(tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    """Small jobs, no upload target, millisecond heartbeats, the database in tmp_path; then overrides."""
    data: dict[str, Any] = {
        "database": {"path": str(tmp_path / "backlogd.sqlite3")},
        "azure_devops": {"target": "none"},
        "workflow": {"include_qa": False, "limits": SMALL},
        "progress": {"heartbeat_seconds": 0.02, "retry_ms": 100},
        "logging": {"level": "warning"},
    }
    for name, values in sections.items():
        data[name] = {**data.get(name, {}), **values}
    return Settings.model_validate(data)


@pytest.fixture
def clock() -> Clock:
    return Clock()


AppFactory = Callable[..., Awaitable[tuple[TestClient[Any, Any], Services]]]


@pytest.fixture
async def make_client(aiohttp_client: Any, tmp_path: Path, clock: Clock) -> AsyncIterator[AppFactory]:
    """``await make_client(token=None, **sections)``: real services and the app on loopback."""
    stacks: list[Any] = []
    clients: list[TestClient[Any, Any]] = []

    async def factory(
        token: str | None = None, **sections: dict[str, Any]
    ) -> tuple[TestClient[Any, Any], Services]:
        if token:
            sections["server"] = {"api_token_env": "BACKLOGD_TEST_TOKEN", **sections.get("server", {})}
        settings = make_settings(tmp_path, **sections)
        cm = build_services(settings, {}, backoff_base=0.01)
        services = await cm.__aenter__()
        stacks.append(cm)
        app = create_app(settings, services, api_token=token, clock=clock)
        client: TestClient[Any, Any] = await aiohttp_client(app)
        clients.append(client)
        return client, services

    yield factory
    for client in clients:
        await client.close()
    for cm in reversed(stacks):
        await cm.__aexit__(None, None, None)


@pytest.fixture
async def emulator() -> AsyncIterator[Callable[..., Awaitable[RunningEmulator]]]:
    """``await emulator(**EmulatorConfig fields)``: the ADO emulator on loopback in this process."""
    running: list[RunningEmulator] = []

    async def start(**config: Any) -> RunningEmulator:
        emu = await serve(EmulatorConfig(**config), "127.0.0.1", 0)
        running.append(emu)
        return emu

    yield start
    for emu in running:
        await emu.close()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[list[Serve]]:
    """Every ``Serve`` a test appends here is killed at the end if it still runs."""
    procs: list[Serve] = []
    yield procs
    for proc in procs:
        proc.kill()
