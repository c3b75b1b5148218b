"""The OpenAI-compatible provider against the fake OpenAI server over loopback."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict
from pydantic import BaseModel

from stages import models
from stages.errors import OutputInvalid, ProviderPermanent, ProviderThrottled, ProviderTransient
from stages.providers.base import ChatMessage, CompletionRequest
from stages.providers.jsonout import extract_json
from stages.providers.openai import OpenAIProvider, StructuredOutput, error_message, parse_retry_after
from tests.fakes.openai_server import FakeLLM

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]
KEY = "sk-test-SECRET-0123456789abcdef"
VISION = (
    "[S1] Shoppers search the catalog by keyword and category.\n"
    "[S2] Shoppers pay by card or voucher at checkout.\n"
    "[S3] Merchants export monthly sales reports as spreadsheets."
)
STAGES: dict[str, tuple[str, type[BaseModel], int]] = {
    "epic": ("epics", models.EpicOut, 3),
    "feature": ("features", models.FeatureOut, 4),
    "story": ("stories", models.StoryOut, 5),
    "task": ("tasks", models.TaskOut, 6),
    "test_case": ("test_cases", models.TestCaseOut, 2),  # imported via the module: pytest would collect Test*
}


def wrapper_schema(stage: str) -> dict[str, Any]:
    key, model, most = STAGES[stage]
    items = model.model_json_schema()
    array = {"type": "array", "items": items, "minItems": 1, "maxItems": most}
    return {"type": "object", "properties": {key: array}, "required": [key], "additionalProperties": False}


def make_request(stage: str = "epic", system: bool = True) -> CompletionRequest:
    messages = [ChatMessage(role="user", content=f"Write the {stage}s for this vision:\n{VISION}")]
    if system:
        messages.insert(0, ChatMessage(role="system", content="You are a product owner."))
    return CompletionRequest(
        stage=stage,
        messages=tuple(messages),
        schema_name=f"{stage}_list",
        json_schema=wrapper_schema(stage),
        max_items=STAGES[stage][2],
        context={},
    )


@pytest.fixture
def fake() -> FakeLLM:
    return FakeLLM(latency=0.0)


@pytest.fixture
async def base_url(fake: FakeLLM, aiohttp_server: ServerFactory) -> str:
    server = await aiohttp_server(fake.app)
    return str(server.make_url("/v1"))


@pytest.fixture
async def make_provider() -> AsyncIterator[Callable[..., OpenAIProvider]]:
    made: list[OpenAIProvider] = []

    def build(base_url: str, **overrides: Any) -> OpenAIProvider:
        options: dict[str, Any] = {
            "model": "gpt-test",
            "api_key": KEY,
            "structured_output": "json_schema",
            "timeout_seconds": 2.0,
            "max_tokens": 900,
            "temperature": 0.2,
        }
        options.update(overrides)
        provider = OpenAIProvider(base_url=base_url, **options)
        made.append(provider)
        return provider

    yield build
    for provider in made:
        await provider.aclose()


async def test_json_schema_mode_sends_strict_response_format(
    fake: FakeLLM, base_url: str, make_provider: Any
) -> None:
    """json_schema mode sends model, limits, untouched messages, a strict json_schema and a Bearer key."""
    request = make_request()
    completion = await make_provider(base_url).complete(request)
    body = fake.requests[0][1]
    assert body["model"] == "gpt-test" and body["max_tokens"] == 900 and body["temperature"] == 0.2
    assert body["messages"] == [m.model_dump() for m in request.messages]
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "epic_list", "schema": request.json_schema, "strict": True},
    }
    assert fake.http[0][1]["Authorization"] == f"Bearer {KEY}"
    assert completion.finish_reason == "stop" and completion.model == "gpt-test"
    assert extract_json(completion.content)["epics"]


@pytest.mark.parametrize("mode", ["json_object", "prompt"])
async def test_schema_goes_into_the_system_message(
    fake: FakeLLM, base_url: str, make_provider: Any, mode: StructuredOutput
) -> None:
    """json_object and prompt modes append the schema to the system message; only json_object
    sets response_format."""
    await make_provider(base_url, structured_output=mode).complete(make_request())
    body = fake.requests[0][1]
    system = body["messages"][0]
    assert system["role"] == "system" and system["content"].startswith("You are a product owner.")
    assert json.dumps(wrapper_schema("epic"), separators=(",", ":")) in system["content"]
    if mode == "json_object":
        assert body["response_format"] == {"type": "json_object"}
    else:
        assert "response_format" not in body and "Answer with JSON only" in system["content"]


async def test_prompt_mode_adds_a_system_message_when_there_is_none(
    fake: FakeLLM, base_url: str, make_provider: Any
) -> None:
    """Without a system message, prompt mode prepends one carrying the schema and keeps the user turn."""
    await make_provider(base_url, structured_output="prompt").complete(make_request(system=False))
    messages = fake.requests[0][1]["messages"]
    assert [m["role"] for m in messages] == ["system", "user"] and "JSON Schema" in messages[0]["content"]


async def test_azure_mode_uses_api_key_header_and_api_version(
    fake: FakeLLM, aiohttp_server: ServerFactory, make_provider: Any
) -> None:
    """Azure mode posts to the deployment URL with ?api-version and an api-key header, never Bearer."""
    server = await aiohttp_server(fake.app)
    base = str(server.make_url("/openai/deployments/gpt4o-prod"))
    completion = await make_provider(base, azure_api_version="2024-10-21").complete(make_request())
    path, headers = fake.http[0]
    assert path == "/openai/deployments/gpt4o-prod/chat/completions?api-version=2024-10-21"
    assert headers["api-key"] == KEY and "Authorization" not in headers
    assert completion.content


async def test_no_key_sends_no_authorization(fake: FakeLLM, base_url: str, make_provider: Any) -> None:
    """A keyless local server (Ollama, vLLM, LM Studio) gets no Authorization header at all."""
    await make_provider(base_url, api_key=None).complete(make_request())
    assert "Authorization" not in fake.http[0][1] and "api-key" not in fake.http[0][1]


async def test_429_raises_throttled_with_retry_after(
    fake: FakeLLM, base_url: str, make_provider: Any
) -> None:
    """A 429 becomes ProviderThrottled with the server's Retry-After, and the fake records the deadline."""
    fake.script = [("429", 0.25)]
    with pytest.raises(ProviderThrottled) as caught:
        await make_provider(base_url).complete(make_request())
    assert caught.value.retry_after == pytest.approx(0.25)
    assert len(fake.retry_deadlines) == 1


@pytest.mark.parametrize("fault", ["500", "reset"])
async def test_server_error_and_reset_are_transient(
    fake: FakeLLM, base_url: str, make_provider: Any, fault: str
) -> None:
    """A 500 or a connection closed without an answer is ProviderTransient (not throttled), and the
    next call works."""
    fake.script = [fault]
    provider = make_provider(base_url)
    with pytest.raises(ProviderTransient) as caught:
        await provider.complete(make_request())
    assert not isinstance(caught.value, ProviderThrottled)
    assert (await provider.complete(make_request())).content


async def test_401_is_permanent_and_never_shows_the_key(
    aiohttp_server: ServerFactory, make_provider: Any
) -> None:
    """A wrong key gives ProviderPermanent with the server's message, and the key is in no message or repr."""
    fake = FakeLLM(api_key="sk-the-right-key-000000")
    server = await aiohttp_server(fake.app)
    provider = make_provider(str(server.make_url("/v1")))
    with pytest.raises(ProviderPermanent) as caught:
        await provider.complete(make_request())
    text = f"{caught.value} {caught.value!r} {provider!r}"
    assert "HTTP 401" in text and "Incorrect API key provided" in text
    assert KEY not in text and "SECRET" not in text


async def test_timeout_is_transient(aiohttp_server: ServerFactory, make_provider: Any) -> None:
    """A server slower than timeout_seconds gives ProviderTransient as soon as the timeout expires."""
    server = await aiohttp_server(FakeLLM(latency=0.2).app)
    provider = make_provider(str(server.make_url("/v1")), timeout_seconds=0.05)
    started = time.monotonic()
    with pytest.raises(ProviderTransient, match="no answer within"):
        await provider.complete(make_request())
    assert time.monotonic() - started < 0.18


async def test_connection_refused_is_transient(make_provider: Any) -> None:
    """Nothing listening on the port is a ProviderTransient, not a crash."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ProviderTransient, match="connection"):
        await make_provider(f"http://127.0.0.1:{port}/v1").complete(make_request())


async def test_truncated_answer_is_returned_with_length(
    fake: FakeLLM, base_url: str, make_provider: Any
) -> None:
    """A cut-off answer comes back with finish_reason "length" (the runner rejects it), unparseable."""
    fake.script = ["truncated"]
    completion = await make_provider(base_url).complete(make_request())
    assert completion.finish_reason == "length"
    with pytest.raises(OutputInvalid):
        extract_json(completion.content)


async def test_usage_is_recorded(fake: FakeLLM, base_url: str, make_provider: Any) -> None:
    """The provider reports the server's token usage, which the fake also counts."""
    provider = make_provider(base_url)
    first = await provider.complete(make_request())
    second = await provider.complete(make_request("story"))
    assert first.prompt_tokens > 0 and first.completion_tokens > 0
    assert fake.usage["requests"] == 2
    assert fake.usage["prompt_tokens"] == first.prompt_tokens + second.prompt_tokens
    assert fake.usage["completion_tokens"] == first.completion_tokens + second.completion_tokens


@pytest.mark.parametrize("mode", ["json_schema", "prompt"])
@pytest.mark.parametrize("stage", list(STAGES))
async def test_default_answer_validates_against_the_stage_models(
    fake: FakeLLM, base_url: str, make_provider: Any, stage: str, mode: StructuredOutput
) -> None:
    """The fake's default answer fills maxItems items that pass the pydantic models, with distinct
    titles and sources taken from the vision's sentence ids, whether the schema comes in response_format
    or in the prompt."""
    key, model, most = STAGES[stage]
    completion = await make_provider(base_url, structured_output=mode).complete(make_request(stage))
    items = extract_json(completion.content)[key]
    parsed = [model.model_validate(item) for item in items]
    assert len(parsed) == most
    assert len({item["title"] for item in items}) == most
    assert {s for item in items for s in item["sources"]} <= {"S1", "S2", "S3"}


async def test_default_answer_is_deterministic(fake: FakeLLM, base_url: str, make_provider: Any) -> None:
    """The same request gets the same answer; a different request gets different titles."""
    provider = make_provider(base_url)
    first = await provider.complete(make_request("story"))
    again = await provider.complete(make_request("story"))
    other = await provider.complete(make_request("feature"))
    assert first.content == again.content
    assert (
        extract_json(first.content)["stories"][0]["title"]
        != extract_json(other.content)["features"][0]["title"]
    )


@pytest.mark.parametrize("fault", ["fenced", "prose"])
async def test_fenced_and_prose_answers_are_extractable(
    fake: FakeLLM, base_url: str, make_provider: Any, fault: str
) -> None:
    """Fenced and prose-wrapped answers still yield the schema-valid JSON through extract_json."""
    fake.script = [fault]
    content = (await make_provider(base_url).complete(make_request())).content
    assert not content.startswith("{")
    assert [models.EpicOut.model_validate(e) for e in extract_json(content)["epics"]]


async def test_invalid_and_wrong_schema_answers_are_rejectable(
    fake: FakeLLM, base_url: str, make_provider: Any
) -> None:
    """invalid_json is not parseable, and wrong_schema parses but fails the pydantic model."""
    fake.script = ["invalid_json", "wrong_schema"]
    provider = make_provider(base_url)
    with pytest.raises(OutputInvalid):
        extract_json((await provider.complete(make_request())).content)
    epics = extract_json((await provider.complete(make_request())).content)["epics"]
    with pytest.raises(ValueError):
        models.EpicOut.model_validate(epics[0])


async def test_malformed_200_is_transient(aiohttp_server: ServerFactory, make_provider: Any) -> None:
    """A 200 whose body is not a chat completion is ProviderTransient."""

    async def odd(request: web.Request) -> web.Response:
        return web.json_response({"choices": []})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", odd)
    server = await aiohttp_server(app)
    with pytest.raises(ProviderTransient, match="malformed"):
        await make_provider(str(server.make_url("/v1"))).complete(make_request())


async def test_injected_session_is_not_closed(base_url: str) -> None:
    """aclose() leaves a caller's session open; the caller owns it."""
    async with aiohttp.ClientSession() as session:
        provider = OpenAIProvider(
            base_url=base_url,
            model="m",
            api_key=None,
            structured_output="json_schema",
            timeout_seconds=2,
            max_tokens=100,
            temperature=0,
            session=session,
        )
        await provider.complete(make_request())
        await provider.aclose()
        assert not session.closed


async def test_throttle_above_and_early_requests(aiohttp_server: ServerFactory, make_provider: Any) -> None:
    """Above throttle_above in-flight requests the fake answers 429, and a request sent before the
    announced deadline is recorded as early."""
    fake = FakeLLM(latency=0.05, throttle_above=1, throttle_retry_after=0.5)
    server = await aiohttp_server(fake.app)
    provider = make_provider(str(server.make_url("/v1")))
    results = await asyncio.gather(
        *(provider.complete(make_request()) for _ in range(2)), return_exceptions=True
    )
    assert sum(isinstance(r, ProviderThrottled) for r in results) == 1 and fake.max_in_flight == 2
    await provider.complete(make_request())  # well before the 0.5 s deadline
    assert len(fake.early_requests) == 1


def test_parse_retry_after_forms() -> None:
    """Retry-After is read from retry-after-ms, seconds or an HTTP-date; junk gives None."""
    now = 1_700_000_000.0
    assert parse_retry_after(CIMultiDict({"retry-after-ms": "1500", "Retry-After": "9"}), now) == 1.5
    assert parse_retry_after(CIMultiDict({"retry-after": "3"}), now) == 3.0
    date = "Tue, 14 Nov 2023 22:13:40 GMT"  # now + 20 s
    assert parse_retry_after(CIMultiDict({"Retry-After": date}), now) == pytest.approx(20.0)
    assert parse_retry_after(CIMultiDict({"Retry-After": "soon"}), now) is None
    assert parse_retry_after(CIMultiDict({"Retry-After": "nan"}), now) is None
    assert parse_retry_after(CIMultiDict(), now) is None


def test_error_message_shapes() -> None:
    """The server's error text is found in OpenAI, Ollama, vLLM and FastAPI error bodies, or the raw body."""
    assert error_message(b'{"error": {"message": "bad schema", "type": "x"}}') == "bad schema"
    assert error_message(b'{"error": "model not found"}') == "model not found"
    assert error_message(b'{"object": "error", "message": "context too long"}') == "context too long"
    assert error_message(b'{"detail": "Not Found"}') == "Not Found"
    assert error_message(b"Bad Gateway") == "Bad Gateway"
