"""A PostgreSQL database of its own for each test: created on the local server, dropped afterwards.

The server is the one on 127.0.0.1:5432 (``.ci/run`` starts it); ``BACKLOGD_TEST_PG`` names another
(a ``postgresql://`` URL without the database). When no server answers, the PostgreSQL variants of
the tests are skipped with that reason; every other test still runs.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path

import asyncpg
import pytest

from outbox.backend import StoreBackend, open_store

SERVER = os.environ.get("BACKLOGD_TEST_PG", "postgresql://postgres@127.0.0.1:5432")
BACKENDS = ("sqlite", "postgresql")


@asynccontextmanager
async def fresh_database() -> AsyncIterator[str]:
    """``CREATE DATABASE bk_test_<uuid>``; yields its URL; drops it (and its sessions) afterwards."""
    name = f"bk_test_{uuid.uuid4().hex[:16]}"
    try:
        admin = await asyncpg.connect(f"{SERVER}/postgres", timeout=3)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        pytest.skip(
            f"no PostgreSQL server reachable at {SERVER} ({exc.__class__.__name__}); .ci/run starts one"
        )
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            yield f"{SERVER}/{name}"
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """A new, empty PostgreSQL database for this test."""
    async with fresh_database() as url:
        yield url


StoreOpener = Callable[..., AbstractAsyncContextManager[StoreBackend]]


@pytest.fixture(params=BACKENDS)
async def store_opener(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[StoreOpener]:
    """``store_opener(clock=…)`` opens a store on this test's backend: a SQLite file or a new database."""
    if request.param == "sqlite":
        yield lambda **kw: open_store(None, str(tmp_path / "store.sqlite3"), **kw)
        return
    async with fresh_database() as url:
        yield lambda **kw: open_store(url, "", **kw)
