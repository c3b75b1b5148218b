"""Fixtures for the web tests: settings in tmp_path, real services (offline provider, embedded
emulator), the app served on loopback by aiohttp's test server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from service.composition import Services, build_services
from service.settings import Settings
from web.app import create_app

SMALL = {
    "max_epics": 2,
    "max_features_per_epic": 2,
    "max_stories_per_feature": 2,
    "max_tasks_per_story": 2,
    "max_test_cases_per_story": 2,
}
VISION = "# Bike shop\nCustomers book repairs online. Mechanics see the repair queue. Owners track revenue."


def make_settings(tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    """Defaults with the database in tmp_path, small limits, millisecond heartbeats; then overrides."""
    base = Settings()
    update: dict[str, Any] = {
        "database": base.database.model_copy(update={"path": str(tmp_path / "backlogd.sqlite3")}),
        "workflow": base.workflow.model_copy(
            update={"limits": base.workflow.limits.model_copy(update=SMALL)}
        ),
        "progress": base.progress.model_copy(update={"heartbeat_seconds": 0.02, "retry_ms": 100}),
    }
    for name, values in sections.items():
        current = update.get(name, getattr(base, name))
        update[name] = current.model_copy(update=values)
    return base.model_copy(update=update)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path)


@pytest.fixture
async def services(settings: Settings) -> AsyncIterator[Services]:
    async with build_services(settings, {}, backoff_base=0.01) as built:
        yield built


@pytest.fixture
async def client(aiohttp_client: Any, settings: Settings, services: Services) -> TestClient[Any, Any]:
    result: TestClient[Any, Any] = await aiohttp_client(create_app(settings, services))
    return result
