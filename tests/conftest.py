"""Shared fixtures: settings in a tmp dir, a fake OpenAI-compatible server on loopback, and a job
runner that builds the real services (store, limiter, runner) around them."""

from __future__ import annotations

import copy
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import structlog
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler

from outbox.records import CallRow, ItemRow, JobRow
from service.composition import Services, build_services
from service.requests import JobRequest
from service.settings import Settings
from tests.fakes.openai_server import FakeLLM
from tests.pgdb import pg_url, store_opener

__all__ = ["pg_url", "store_opener"]  # fixtures every test may ask for

REPO = Path(__file__).resolve().parent.parent
SAMPLES = REPO / "samples"

SMALL_LIMITS = {
    "max_epics": 2,
    "max_features_per_epic": 2,
    "max_stories_per_feature": 2,
    "max_tasks_per_story": 2,
    "max_test_cases_per_story": 2,
}
VISION = {
    "title": "ToolShare",
    "domain": "community",
    "vision": "A mobile app that lets neighbours lend and borrow tools. "
    "Owners list tools with photos and a deposit. Borrowers book a tool for a time slot.",
    "target_users": ["Tool owners", "Borrowers"],
    "key_features": ["Tool listings with photos", "Bookings with deposits"],
}


@pytest.fixture(autouse=True)
def _restore_log_config() -> Iterator[None]:
    """CLI commands under test call ``logs.configure``, which binds the log stream to the test's captured
    stdout/stderr; restore the previous configuration so no later test logs into a closed stream."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def make_settings(tmp_path: Path, **sections: dict[str, Any]) -> Settings:
    """Settings with the database in ``tmp_path``, no upload target and fixed (not probed) sizing;
    each keyword is a section merged over those defaults, e.g. ``llm={"provider": "openai"}``."""
    base: dict[str, Any] = {
        "database": {"path": str(tmp_path / "state" / "backlogd.sqlite3")},
        "azure_devops": {"target": "none"},
        "llm": {"api_key_env": None, "max_attempts": 3, "requests_per_minute": 600_000},
        "workflow": {"limits": SMALL_LIMITS, "parallel_processing": {"use_hardware_optimization": False}},
        "logging": {"level": "warning"},
    }
    return Settings.model_validate(_merge(base, sections))


@pytest.fixture
def settings_factory(tmp_path: Path) -> Callable[..., Settings]:
    """``settings_factory(**sections)``: see ``make_settings``."""

    def factory(**sections: dict[str, Any]) -> Settings:
        return make_settings(tmp_path, **sections)

    return factory


@dataclass
class FakeServer:
    fake: FakeLLM
    server: TestServer

    @property
    def base_url(self) -> str:
        return str(self.server.make_url("/v1"))

    def settings_for(self, make: Callable[..., Settings], **sections: dict[str, Any]) -> Settings:
        """Settings pointing the ``openai`` provider at this fake."""
        llm = {"provider": "openai", "base_url": self.base_url, **sections.pop("llm", {})}
        return make(llm=llm, **sections)


@pytest.fixture
async def fake_llm() -> AsyncIterator[Callable[..., Awaitable[FakeServer]]]:
    """``await fake_llm(middlewares=(), **FakeLLM kwargs)`` starts a fake OpenAI-compatible server on
    loopback; the aiohttp middlewares can script per-call behaviour (delays, failures)."""
    servers: list[TestServer] = []

    async def start(*, middlewares: Sequence[Any] = (), **kwargs: Any) -> FakeServer:
        fake = FakeLLM(**kwargs)
        fake.app.middlewares.extend(middlewares)  # before the server starts (and freezes the app)
        server = TestServer(fake.app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return FakeServer(fake, server)

    yield start
    for server in servers:
        await server.close()


@dataclass
class JobResult:
    job: JobRow
    items: list[ItemRow]
    calls: list[CallRow]

    def of(self, kind: str) -> list[ItemRow]:
        return [i for i in self.items if i.kind == kind]

    def call(self, key_prefix: str) -> list[CallRow]:
        return [c for c in self.calls if c.call_key.startswith(key_prefix)]


async def run_job(
    settings: Settings,
    vision: dict[str, Any] | str | None = None,
    *,
    during: Callable[[Services, str], Awaitable[None]] | None = None,
) -> JobResult:
    """Build the real services, run one job to its end (``during`` runs alongside), return its rows."""
    async with build_services(settings, {}, with_relay=False, backoff_base=0.001) as services:
        job_id = await services.jobs.submit(JobRequest(vision=VISION if vision is None else vision))
        if during is not None:
            await during(services, job_id)
        job = await services.jobs.wait(job_id)
        return JobResult(job, await services.store.items(job_id), await services.store.calls(job_id))


_CONTEXT = re.compile(r"Context:\n(.*?)\n\nNeighbouring", re.DOTALL)
_STAGE = re.compile(r'Answer as \{"(\w+)"')


def call_key_of(body: dict[str, Any]) -> tuple[str, str]:
    """The stage call a request to the fake belongs to: (stage, the parent chain text of its prompt)."""
    user = next(m["content"] for m in body["messages"] if m["role"] == "user")
    stage = _STAGE.search(user)
    context = _CONTEXT.search(user)
    return (stage.group(1) if stage else "?", context.group(1) if context else "(vision)")


def parent_title(body: dict[str, Any]) -> str:
    """The title of the item a request expands (the last line of its parent chain), or '' for epics."""
    _, context = call_key_of(body)
    heads = [ln for ln in context.splitlines() if not ln.startswith(" ")]
    return heads[-1].split(": ", 1)[1] if heads and ": " in heads[-1] else ""


class CallFaults:
    """An aiohttp middleware for the fake: the first call (by ``call_key_of``) whose stage is ``stage``
    is answered ``status`` for its first ``times`` requests (``None``: always); every other request,
    and every request of that call, is logged in ``seen``."""

    def __init__(self, stage: str, times: int | None, status: int = 500) -> None:
        self.stage, self.times, self.status = stage, times, status
        self.target: tuple[str, str] | None = None
        self.failed = 0
        self.seen: list[tuple[str, str]] = []

    __middleware_version__ = 1  # what ``@web.middleware`` marks; a bound method cannot carry it

    async def __call__(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        key = call_key_of(await request.json())
        self.seen.append(key)
        if self.target is None and key[0] == self.stage:
            self.target = key
        if key == self.target and (self.times is None or self.failed < self.times):
            self.failed += 1
            return web.json_response({"error": {"message": "upstream exploded"}}, status=self.status)
        return await handler(request)
