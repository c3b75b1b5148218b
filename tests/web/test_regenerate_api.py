"""Regenerating one item's children: the instruction reaches the provider's prompt, the old children
are replaced by the new ones in one audited ``regenerated`` edit (the call recorded under a new key),
bad instructions are a 400, and children already in Azure DevOps make it a 409."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from service.composition import Services, build_services
from tests.fakes.openai_server import FakeLLM
from tests.web.conftest import VISION, make_settings
from web.app import create_app

Client = TestClient[Any, Any]


async def _job(client: Client, services: Services, mode: str = "review") -> tuple[str, dict[str, Any]]:
    resp = await client.post("/api/jobs", json={"vision": VISION, "upload_mode": mode, "include_qa": False})
    assert resp.status == 202, await resp.text()
    job_id = str((await resp.json())["job_id"])
    await services.jobs.wait(job_id)
    story = (await (await client.get(f"/api/jobs/{job_id}/backlog")).json())["epics"][0]["features"][0][
        "stories"
    ][0]
    return job_id, story


async def _regenerate(
    client: Client, services: Services, job_id: str, story: dict[str, Any], text: str
) -> None:
    url = f"/api/jobs/{job_id}/items/{story['id']}/regenerate"
    resp = await client.post(url, json={"instruction": text})
    assert resp.status == 202, await resp.text()
    await services.regenerator.wait(story["id"])


async def test_regenerate_replaces_the_children_with_the_offline_provider(
    client: Client, services: Services
) -> None:
    """With the offline provider a story's tasks are replaced: new ids, the old ones removed, one
    regenerated edit event naming both, and the call recorded under a new key."""
    job_id, story = await _job(client, services)
    old = {t["id"] for t in story["tasks"]}
    await _regenerate(client, services, job_id, story, "split into smaller tasks")
    rows = await services.store.items(job_id)
    tasks = [r for r in rows if r.parent_id == story["id"] and r.kind == "task"]
    assert tasks and not old & {r.id for r in tasks}
    assert all(r.state == "held" for r in tasks)
    edit = [e for e in await services.store.events_after(job_id, 0) if e.type == "edit"][-1].payload
    assert edit["change"] == "regenerated" and edit["item_id"] == story["id"]
    assert set(edit["removed"]) == old and {a["id"] for a in edit["added"]} == {r.id for r in tasks}
    calls = [c.call_key for c in await services.store.calls(job_id)]
    assert any(k.startswith(f"tasks:{story['id']}:regenerate-") for k in calls)
    for bad in ({"instruction": ""}, {"instruction": "x" * 501}, {}):
        resp = await client.post(f"/api/jobs/{job_id}/items/{story['id']}/regenerate", json=bad)
        assert resp.status == 400
        assert (await resp.json())["error"]["details"][0]["field"] == "instruction"


async def test_regenerating_uploaded_children_is_a_409(client: Client, services: Services) -> None:
    """Once a story's tasks are in Azure DevOps they are not replaced: 409 children_uploaded."""
    job_id, story = await _job(client, services, mode="after_generation")
    resp = await client.post(
        f"/api/jobs/{job_id}/items/{story['id']}/regenerate", json={"instruction": "more"}
    )
    assert resp.status == 409 and (await resp.json())["error"]["code"] == "children_uploaded"


async def test_the_instruction_reaches_the_prompt_of_the_jobs_provider(
    aiohttp_client: Any, aiohttp_server: Any, tmp_path: Path
) -> None:
    """Through an OpenAI-compatible provider the user's instruction is in the regeneration's prompt."""
    fake = FakeLLM()
    server = await aiohttp_server(fake.app)
    llm = {"provider": "openai", "base_url": str(server.make_url("/v1")), "api_key_env": None}
    settings = make_settings(tmp_path, llm=llm)
    async with build_services(settings, {}, backoff_base=0.01) as services:
        client = await aiohttp_client(create_app(settings, services))
        job_id, story = await _job(client, services)
        before = len(fake.requests)
        await _regenerate(client, services, job_id, story, "add a test for offline mode")
        prompts = [json.dumps(body["messages"]) for _, body in fake.requests[before:]]
        assert prompts and all("add a test for offline mode" in p for p in prompts)
        edit = [e for e in await services.store.events_after(job_id, 0) if e.type == "edit"][-1].payload
        assert edit["change"] == "regenerated"
