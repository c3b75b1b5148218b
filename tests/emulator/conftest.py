"""Fixtures for the Azure DevOps emulator tests: a real emulator server and a thin JSON client."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from emulator import EmulatorConfig, create_emulator_app

PAT = "test-pat"
PROJECTS = (("Backlogd", "Agile"), ("ScrumProj", "Scrum"), ("CmmiProj", "CMMI"), ("BasicProj", "Basic"))
PATCH_JSON = "application/json-patch+json"


def basic(pat: str) -> str:
    return "Basic " + base64.b64encode(f":{pat}".encode()).decode()


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    text: str

    @property
    def json(self) -> Any:
        return json.loads(self.text)


@dataclass
class Ado:
    """A minimal client that speaks to the emulator the way a real ADO client would."""

    session: aiohttp.ClientSession
    base: str
    org: str = "backlogd"
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def org_url(self) -> str:
        return f"{self.base}/{self.org}"

    def item_url(self, item_id: int) -> str:
        return f"{self.org_url}/_apis/wit/workItems/{item_id}"

    async def request(self, method: str, path: str, body: Any = None, **kw: Any) -> Reply:
        headers = {**self.headers, **kw.pop("headers", {})}
        data = kw.pop("data", None)
        if body is not None:
            data = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        url = path if path.startswith("http") else f"{self.base}{path}"
        async with self.session.request(method, url, data=data, headers=headers, **kw) as resp:
            return Reply(resp.status, dict(resp.headers), await resp.text())

    async def create(
        self,
        type_name: str,
        fields: dict[str, Any],
        relations: list[tuple[str, int]] = (),  # type: ignore[assignment]
        project: str = "Backlogd",
        query: str = "api-version=7.1",
    ) -> Reply:
        ops: list[dict[str, Any]] = [
            {"op": "add", "path": f"/fields/{k}", "value": v} for k, v in fields.items()
        ]
        ops += [
            {"op": "add", "path": "/relations/-", "value": {"rel": rel, "url": self.item_url(target)}}
            for rel, target in relations
        ]
        path = f"/{self.org}/{project}/_apis/wit/workitems/${type_name.replace(' ', '%20')}?{query}"
        return await self.request("POST", path, ops, headers={"Content-Type": PATCH_JSON})

    async def patch(self, item_id: int, ops: list[dict[str, Any]], query: str = "api-version=7.1") -> Reply:
        path = f"/{self.org}/_apis/wit/workitems/{item_id}?{query}"
        return await self.request("PATCH", path, ops, headers={"Content-Type": PATCH_JSON})

    async def wiql(self, query: str, project: str | None = "Backlogd") -> Reply:
        scope = f"/{project}" if project else ""
        return await self.request(
            "POST", f"/{self.org}{scope}/_apis/wit/wiql?api-version=7.1", {"query": query}
        )

    async def state(self) -> dict[str, Any]:
        reply = await self.request("GET", "/_emulator/state")
        return dict(reply.json)

    async def set_faults(self, **faults: Any) -> Reply:
        return await self.request("POST", "/_emulator/faults", faults)


@pytest.fixture
def emu_config() -> EmulatorConfig:
    return EmulatorConfig(projects=PROJECTS, pats=frozenset({PAT}), control=True)


@pytest.fixture
async def emu_server(
    aiohttp_server: Callable[..., Awaitable[TestServer]], emu_config: EmulatorConfig
) -> TestServer:
    return await aiohttp_server(create_emulator_app(emu_config))


@pytest.fixture
async def emu(emu_server: TestServer) -> AsyncIterator[Ado]:
    headers = {"Authorization": basic(PAT), "X-TFS-FedAuthRedirect": "Suppress"}
    async with aiohttp.ClientSession() as session:
        yield Ado(session, str(emu_server.make_url("")).rstrip("/"), headers=headers)
