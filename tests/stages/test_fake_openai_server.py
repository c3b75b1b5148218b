"""The fake OpenAI-compatible server: schema-driven answers, knobs, observations and process mode."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from stages.answers import parse_answer
from stages.definitions import STAGES, build_request
from stages.providers.openai import OpenAIProvider, StructuredOutput
from stages.vision import from_text
from tests.fakes.openai_server import FakeLLM, default_responder
from tests.fakes.schema_faker import Faker

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
ROOT = Path(__file__).resolve().parents[2]
VISION_TEXT = (
    "Shoppers search the catalog by keyword and category. Shoppers pay by card or voucher at checkout. "
    "Merchants export monthly sales reports as spreadsheets. Support agents refund orders within a day."
)


def chat(content: str = "[S1] Shoppers search the catalog.", **extra: Any) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": content}], **extra}


async def post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    async with session.post(url, json=body) as resp:
        return resp.status, await resp.json()


async def test_throttle_above_answers_429_and_records_early_requests(aiohttp_server: ServerFactory) -> None:
    """Above throttle_above in-flight requests the fake answers 429 with Retry-After, and a request
    arriving before that deadline is recorded as early."""
    fake = FakeLLM(latency=0.05, throttle_above=1, throttle_retry_after=0.5)
    server = await aiohttp_server(fake.app)
    url = str(server.make_url("/v1/chat/completions"))
    async with aiohttp.ClientSession() as session:
        statuses = await asyncio.gather(*(post(session, url, chat()) for _ in range(3)))
        assert sorted(s for s, _ in statuses) == [200, 429, 429] and fake.max_in_flight == 2
        assert len(fake.retry_deadlines) == 2 and not fake.early_requests
        await asyncio.sleep(0.01)  # clearly after the 429s were sent, long before their 0.5 s deadline
        await post(session, url, chat())
    assert len(fake.early_requests) == 1 and fake.in_flight == 0


async def test_script_is_consumed_in_order_and_sleep_adds_latency(aiohttp_server: ServerFactory) -> None:
    """Scripted faults apply one each to the next requests, then answers are normal again."""
    fake = FakeLLM(script=["500", ("sleep", 0.03), "invalid_json"])
    server = await aiohttp_server(fake.app)
    url = str(server.make_url("/v1/chat/completions"))
    async with aiohttp.ClientSession() as session:
        first, _ = await post(session, url, chat())
        started = fake.clock()
        second, _ = await post(session, url, chat())
        assert fake.clock() - started >= 0.03
        third = (await post(session, url, chat()))[1]["choices"][0]["message"]["content"]
        fourth = (await post(session, url, chat()))[1]["choices"][0]["message"]["content"]
    assert (first, second) == (500, 200) and "oops" in third and json.loads(fourth)
    assert fake.script == []


async def test_custom_responder_and_models_endpoint(aiohttp_server: ServerFactory) -> None:
    """A custom responder's string is the content as is; /v1/models lists the fake model."""
    fake = FakeLLM(responder=lambda body: "plain words", model="fake-1")
    server = await aiohttp_server(fake.app)
    async with aiohttp.ClientSession() as session:
        _, body = await post(session, str(server.make_url("/v1/chat/completions")), chat())
        async with session.get(server.make_url("/v1/models")) as resp:
            models = await resp.json()
    assert body["choices"][0]["message"]["content"] == "plain words"
    assert models["data"][0]["id"] == "fake-1"


async def test_bad_body_is_a_400(aiohttp_server: ServerFactory) -> None:
    """A body without messages gets an OpenAI-style 400 error."""
    server = await aiohttp_server(FakeLLM().app)
    async with aiohttp.ClientSession() as session:
        status, body = await post(session, str(server.make_url("/v1/chat/completions")), {"model": "m"})
    assert status == 400 and "messages" in body["error"]["message"]


def test_faker_resolves_refs_combinators_and_bounds() -> None:
    """The generator resolves root $refs, takes the non-null anyOf branch, merges allOf and keeps
    enum, const, exclusive bounds and string lengths."""
    schema = {
        "$defs": {"Step": {"type": "object", "properties": {"do": {"type": "string", "minLength": 40}}}},
        "type": "object",
        "properties": {
            "steps": {"type": "array", "items": {"$ref": "#/$defs/Step"}, "minItems": 2, "maxItems": 2},
            "maybe": {"anyOf": [{"type": "null"}, {"type": "integer", "exclusiveMinimum": 5, "maximum": 6}]},
            "both": {
                "allOf": [{"type": "object", "properties": {"a": {"const": 7}}}, {"properties": {"b": {}}}]
            },
            "kind": {"enum": ["x", "y"]},
            "short": {"type": "string", "maxLength": 4},
            "ratio": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1},
        },
    }
    value = Faker.for_text(schema, "words here", seed=1).instance()
    assert len(value["steps"]) == 2 and all(len(s["do"]) >= 40 for s in value["steps"])
    assert value["maybe"] == 6 and value["both"]["a"] == 7 and "b" in value["both"]
    assert value["kind"] in ("x", "y") and len(value["short"]) <= 4 and 0 < value["ratio"] < 1


def test_default_responder_reads_the_schema_from_the_prompt() -> None:
    """Without response_format, the schema shown in the system message drives the answer."""
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    body = chat(content="hi")
    body["messages"].insert(0, {"role": "system", "content": f"Be brief. JSON Schema:\n{json.dumps(schema)}"})
    assert default_responder(body) == {"ok": True}


async def test_runs_as_a_separate_process() -> None:
    """`python -m tests.fakes.openai_server` prints LISTENING <port>, serves, and prints STATS on SIGTERM."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.fakes.openai_server",
        "--port",
        "0",
        "--latency",
        "0.01",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
        assert line.startswith("LISTENING ")
        url = f"http://127.0.0.1:{int(line.split()[1])}/v1/chat/completions"
        async with aiohttp.ClientSession() as session:
            status, body = await post(session, url, chat())
        assert status == 200 and body["usage"]["total_tokens"] > 0
    finally:
        proc.send_signal(signal.SIGTERM)
        rest = (await asyncio.wait_for(proc.communicate(), 20))[0].decode()
    assert json.loads(rest.split("STATS ", 1)[1])["requests"] == 1 and proc.returncode == 0


@pytest.mark.parametrize("mode", ["json_schema", "prompt"])
@pytest.mark.parametrize("stage_name", list(STAGES))
async def test_default_answers_pass_the_real_stage_checks(
    aiohttp_server: ServerFactory, stage_name: str, mode: StructuredOutput
) -> None:
    """For every stage's real prompt and schema, the fake's default answer passes parse_answer with
    max_items items whose sources exist in the vision."""
    vision = from_text(VISION_TEXT)
    stage = STAGES[stage_name]
    request = build_request(stage, vision, [], [], 4)
    server = await aiohttp_server(FakeLLM().app)
    provider = OpenAIProvider(
        base_url=str(server.make_url("/v1")),
        model="m",
        api_key=None,
        structured_output=mode,
        timeout_seconds=2,
        max_tokens=2000,
        temperature=0,
    )
    try:
        completion = await provider.complete(request)
    finally:
        await provider.aclose()
    items = parse_answer(stage, completion, vision, 4, [])
    assert len(items) == 4
    assert {s for item in items for s in item["sources"]} <= {s.id for s in vision.sentences}
