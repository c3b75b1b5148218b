"""The request schema is the contract, and ``structured_output: auto`` finds what a server accepts:
a strict, bounded schema; a fallback on a refused ``response_format`` that is remembered; a context
overflow, a 503 and llama.cpp's unparseable-output 500 each mapped to what the runner must do."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from stages.definitions import STAGES, build_request
from stages.errors import ContextTooLong, OutputTruncated, ProviderThrottled
from stages.providers.openai import OpenAIProvider
from stages.schema import request_schema
from stages.vision import from_mapping
from tests.fakes.openai_server import FakeLLM

VISION = from_mapping({"vision": "Owners list tools. Borrowers book them.", "key_features": ["Deposits"]})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def walk(node: Any) -> list[dict[str, Any]]:
    out = []
    if isinstance(node, dict):
        out.append(node)
        for value in node.values():
            out += walk(value)
    elif isinstance(node, list):
        for value in node:
            out += walk(value)
    return out


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_stage_schema_is_strict_and_bounded(stage: str) -> None:
    """Every object forbids extra keys and requires all its properties, every string has a maxLength,
    every array a maxItems, every number a range or an enum, and sources are an enum of the shown ids."""
    schema = request_schema(stage, STAGES[stage].kind, 3, ["S1", "S4"])
    nodes = walk(schema)
    for node in nodes:
        if node.get("type") == "object":
            assert node["additionalProperties"] is False and set(node["required"]) == set(node["properties"])
        if node.get("type") == "string":
            assert "maxLength" in node
        if node.get("type") == "array":
            assert "maxItems" in node
        if node.get("type") in ("integer", "number"):
            assert "enum" in node or ("minimum" in node and "maximum" in node)
    assert schema["properties"][stage]["maxItems"] == 3
    item = schema["properties"][stage]["items"]
    assert item["properties"]["sources"]["items"]["enum"] == ["S1", "S4"]
    if stage == "stories":
        assert item["properties"]["story_points"]["enum"] == [1, 2, 3, 5, 8, 13]


def test_a_child_request_may_only_cite_the_sentences_its_prompt_shows() -> None:
    """The enum of a request's sources is exactly the ids of the vision lines in its prompt."""
    request = build_request(STAGES["epics"], VISION, [], [], 2)
    shown = [
        line.split("]")[0][1:] for line in request.messages[0].content.splitlines() if line.startswith("[S")
    ]
    enum = request.json_schema["properties"]["epics"]["items"]["properties"]["sources"]["items"]["enum"]
    assert enum == shown == ["S1", "S2", "S3"]


@pytest.fixture
async def serve() -> AsyncIterator[Callable[[FakeLLM, Any], Awaitable[str]]]:
    servers: list[TestServer] = []

    async def start(fake: FakeLLM, middleware: Any) -> str:
        fake.app.middlewares.append(middleware)
        server = TestServer(fake.app, host="127.0.0.1")
        await server.start_server()
        servers.append(server)
        return str(server.make_url("/v1"))

    yield start
    for server in servers:
        await server.close()


def provider(base_url: str, mode: str = "auto") -> OpenAIProvider:
    return OpenAIProvider(
        base_url=base_url,
        model="m",
        api_key=None,
        structured_output=mode,  # type: ignore[arg-type]
        timeout_seconds=5,
        max_tokens=512,
        temperature=0,
    )


async def test_auto_falls_back_when_response_format_is_refused_and_remembers(serve: Any) -> None:
    """A server refusing json_schema and json_object with 400 gets the schema in the prompt; the next
    call starts in prompt mode at once."""
    seen: list[str] = []

    @web.middleware
    async def refuse(request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.json()
        kind = (body.get("response_format") or {}).get("type", "prompt")
        seen.append(kind)
        if kind != "prompt":
            return web.json_response(
                {"error": {"message": f"unsupported response_format {kind}"}}, status=400
            )
        return await handler(request)

    url = await serve(FakeLLM(), refuse)
    llm = provider(url)
    try:
        first = await llm.complete(build_request(STAGES["epics"], VISION, [], [], 2))
        second = await llm.complete(build_request(STAGES["epics"], VISION, [], [], 2))
    finally:
        await llm.aclose()
    assert seen == ["json_schema", "json_schema", "json_object", "prompt", "prompt"]
    assert (first.structured_output, first.requests, second.requests) == ("prompt", 4, 1)


async def test_a_strict_server_refusing_string_lengths_keeps_the_schema_without_them(serve: Any) -> None:
    """A server that refuses maxLength in strict mode (as OpenAI lists it unsupported) still gets a
    json_schema, without the string lengths but with the sources enum, and keeps getting it."""
    schemas: list[dict[str, Any]] = []

    @web.middleware
    async def strict(request: web.Request, handler: Handler) -> web.StreamResponse:
        schema = (await request.json())["response_format"]["json_schema"]["schema"]
        schemas.append(schema)
        if "maxLength" in json.dumps(schema):
            message = "Invalid schema for response_format: 'maxLength' is not permitted."
            return web.json_response({"error": {"message": message}}, status=400)
        return await handler(request)

    url = await serve(FakeLLM(), strict)
    llm = provider(url)
    try:
        first = await llm.complete(build_request(STAGES["epics"], VISION, [], [], 2))
        await llm.complete(build_request(STAGES["epics"], VISION, [], [], 2))
    finally:
        await llm.aclose()
    assert len(schemas) == 3 and first.structured_output == "json_schema_lean"
    lean = schemas[-1]["properties"]["epics"]["items"]
    assert lean["properties"]["sources"]["items"]["enum"] == ["S1", "S2", "S3"]
    assert lean["properties"]["priority"]["maximum"] == 4


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (
            400,
            {
                "error": {
                    "type": "exceed_context_size_error",
                    "message": "request (2031 tokens) exceeds the "
                    "available context size (512 tokens), try increasing it",
                }
            },
            ContextTooLong,
        ),
        (503, {"error": {"message": "Service overloaded"}}, ProviderThrottled),
        (
            500,
            {
                "error": {
                    "message": "The model produced output that does not match the expected peg-native format"
                }
            },
            OutputTruncated,
        ),
    ],
    ids=["context", "503", "llama-unparsed"],
)
async def test_server_errors_map_to_what_the_runner_must_do(
    serve: Any, status: int, body: dict[str, Any], error: type[Exception]
) -> None:
    """A context overflow is permanent (no fallback, no retry), a 503 is pacing like a 429, and
    llama.cpp's unparseable-output 500 is a cut answer (retried for fewer items)."""
    calls: list[int] = []

    @web.middleware
    async def fail(request: web.Request, handler: Handler) -> web.StreamResponse:
        calls.append(1)
        return web.json_response(body, status=status)

    url = await serve(FakeLLM(), fail)
    llm = provider(url)
    try:
        with pytest.raises(error) as raised:
            await llm.complete(build_request(STAGES["epics"], VISION, [], [], 2))
    finally:
        await llm.aclose()
    assert len(calls) == 1  # none of these is a refused response_format: no fallback request
    if error is ContextTooLong:
        assert "context window" in str(raised.value)


async def test_llama_unparsed_output_is_retried_for_fewer_items_by_the_runner(
    fake_llm: Any, settings_factory: Any
) -> None:
    """When the server answers its unparseable-output 500 once, the call is asked again for fewer items
    and the job completes without storing anything from the failed answer."""
    from tests.conftest import run_job

    asked: list[int] = []

    @web.middleware
    async def once(request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.json()
        schema = body["response_format"]["json_schema"]["schema"]
        if "epics" in schema["properties"]:
            asked.append(schema["properties"]["epics"]["maxItems"])
        if len(asked) == 1:
            message = "The model produced output that does not match the expected peg-native format"
            return web.json_response({"error": {"code": 500, "message": message}}, status=500)
        return await handler(request)

    server = await fake_llm(middlewares=[once])
    settings = server.settings_for(settings_factory, workflow={"limits": {"max_epics": 4}})
    result = await run_job(settings)
    assert result.job.status == "completed"
    assert asked == [4, 2] and result.call("epics:")[0].attempts == 2
    assert len(result.of("epic")) <= 2
