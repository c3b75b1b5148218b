"""A scriptable fake OpenAI-compatible server (a real aiohttp app) for tests and benchmarks.

``FakeLLM(...).app`` serves ``POST /v1/chat/completions`` (and Azure's
``/openai/deployments/{name}/chat/completions``) and ``GET /v1/models``. By default it answers with
schema-valid JSON built from the request's schema; ``script`` queues one-shot faults for the next
requests; ``throttle_above`` answers 429 when too many requests are in flight. It records what it saw
(``requests``, ``retry_deadlines``, ``early_requests``, ``max_in_flight``, ``usage``).

As a process: ``python -m tests.fakes.openai_server --port 0 --latency 0.05`` prints
``LISTENING <port>`` once ready, and ``STATS <json>`` when stopped by SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import signal
import time
from collections.abc import Callable
from typing import Any, NoReturn

from aiohttp import web

from stages.providers.jsonout import find_json_values
from stages.roles import named_roles, role_phrase
from tests.fakes.schema_faker import Faker

Fault = str | tuple[str, float]
"""``"fenced" | "prose" | "invalid_json" | "truncated" | "wrong_schema" | "500" | "reset" | "401"``
or ``("429", retry_after_seconds)`` or ``("sleep", seconds)`` (extra latency for that request)."""
_VISION_LINE = re.compile(r"^\s*\[S\d+\]")
Responder = Callable[[dict[str, Any]], "str | dict[str, Any]"]


class FakeLLM:
    def __init__(
        self,
        *,
        latency: float = 0.0,
        responder: Responder | None = None,
        script: list[Fault] | None = None,
        throttle_above: int | None = None,
        throttle_retry_after: float | None = 0.05,
        fault_rates: dict[str, float] | None = None,
        api_key: str | None = None,
        model: str = "fake-model",
        early_grace: float = 0.002,
        seed: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.latency = latency
        self.responder: Responder = responder or default_responder
        self.script: list[Fault] = list(script or [])
        self.throttle_above = throttle_above
        self.throttle_retry_after = throttle_retry_after
        self.fault_rates = dict(fault_rates or {})  # e.g. {"429": 0.1, "500": 0.05}
        self.api_key = api_key
        self.model = model
        self.early_grace = early_grace
        self.clock = clock
        self._rng = random.Random(seed)
        self.requests: list[tuple[float, dict[str, Any]]] = []
        self.http: list[tuple[str, dict[str, str]]] = []  # (path with query, headers) per request
        self.retry_deadlines: list[float] = []
        self._announced: list[tuple[float, float]] = []  # (announced at, deadline)
        self.early_requests: list[tuple[float, dict[str, Any]]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.throttled = 0
        self.throttle_log: list[float] = []  # arrival time of each request answered 429
        self.usage = {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self._chat)
        self.app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._chat)
        self.app.router.add_get("/v1/models", self._models)

    def stats(self) -> dict[str, Any]:
        return {
            "requests": len(self.requests),
            "max_in_flight": self.max_in_flight,
            "retry_deadlines": len(self.retry_deadlines),
            "early_requests": len(self.early_requests),
            "throttled": self.throttled,
            "usage": dict(self.usage),
        }

    async def _models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": self.model, "object": "model"}]})

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        arrived = self.clock()
        self.http.append((request.path_qs, dict(request.headers)))
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "the body is not JSON", "invalid_request_error")
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _error(400, "'messages' is required", "invalid_request_error")
        self.requests.append((arrived, body))
        if self._is_early(arrived):
            self.early_requests.append((arrived, body))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            return await self._answer(request, body, arrived)
        finally:
            self.in_flight -= 1

    async def _answer(self, request: web.Request, body: dict[str, Any], arrived: float) -> web.StreamResponse:
        denied = self._auth_error(request)
        if denied is not None:
            return denied
        if self.throttle_above is not None and self.in_flight > self.throttle_above:
            return self._throttled(arrived, self.throttle_retry_after)
        fault = self._next_fault()
        name, arg = (fault, 0.0) if isinstance(fault, str) or fault is None else fault
        if name == "429":
            return self._throttled(arrived, arg)
        await asyncio.sleep(self.latency + (arg if name == "sleep" else 0.0))
        if name == "500":
            return _error(500, "The server had an error while processing your request.", "server_error")
        if name == "401":
            return _error(401, "Incorrect API key provided.", "invalid_request_error")
        if name == "reset":
            return _reset(request)
        return self._completion(body, name)

    def _auth_error(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        given = request.headers.get("api-key") or request.headers.get("Authorization", "").removeprefix(
            "Bearer "
        )
        if given == self.api_key:
            return None
        # Like OpenAI, echo the key that was sent: the client must not repeat it in its errors.
        return _error(401, f"Incorrect API key provided: {given}.", "invalid_request_error")

    def _is_early(self, arrived: float) -> bool:
        """Arrived after a 429 was sent and before its deadline. ``early_grace`` absorbs the race of a
        request the client sent just before it read the 429 (and clock rounding at the deadline)."""
        grace = self.early_grace
        return any(sent + grace <= arrived < deadline - grace for sent, deadline in self._announced)

    def _throttled(self, arrived: float, retry_after: float | None) -> web.Response:
        """429; ``retry_after`` None sends a bare 429 (vLLM, Ollama and most proxies): no deadline."""
        resp = _error(429, "Rate limit reached for requests. Please try again later.", "rate_limit_error")
        self.throttled += 1
        self.throttle_log.append(arrived)
        if retry_after is None:
            return resp
        deadline = arrived + retry_after
        self._announced.append((self.clock(), deadline))
        self.retry_deadlines.append(deadline)
        headers = {"Retry-After": f"{retry_after:g}"}
        if retry_after:  # like OpenAI: the ms header only with a real wait
            headers["retry-after-ms"] = f"{retry_after * 1000:g}"
        resp.headers.update(headers)
        return resp

    def _next_fault(self) -> Fault | None:
        if self.script:
            return self.script.pop(0)
        for name, rate in self.fault_rates.items():
            if self._rng.random() < rate:
                return (name, self.throttle_retry_after or 0.0) if name == "429" else name
        return None

    def _completion(self, body: dict[str, Any], fault: str | None) -> web.Response:
        produced = self.responder(body)
        answer = produced if isinstance(produced, str) else None
        value = produced if isinstance(produced, dict) else None
        if fault == "wrong_schema" and value is not None:
            value = _break(value)
        content = answer if answer is not None else json.dumps(value, indent=1)
        finish = "stop"
        if fault == "fenced":
            content = f"```json\n{content}\n```"
        elif fault == "prose":
            content = (
                f"Understood! Here is the result you asked for:\n{content}\nLet me know if you need changes."
            )
        elif fault == "invalid_json":
            content = "{'items': [oops, this is not JSON}"
        elif fault == "truncated":
            content, finish = content[: max(1, len(content) * 3 // 5)], "length"
        prompt_tokens = _tokens(json.dumps(body.get("messages", [])))
        completion_tokens = _tokens(content)
        self.usage["requests"] += 1
        self.usage["prompt_tokens"] += prompt_tokens
        self.usage["completion_tokens"] += completion_tokens
        self.usage["total_tokens"] += prompt_tokens + completion_tokens
        return web.json_response(
            {
                "id": f"chatcmpl-fake-{len(self.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": str(body.get("model") or self.model),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": finish,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
        )


def default_responder(body: dict[str, Any]) -> dict[str, Any]:
    """Schema-valid JSON for the request: the schema comes from ``response_format`` or, failing
    that, from the JSON Schema text in the messages. Text and ``sources`` ids come from the user
    messages and from the ``[S1] ...`` vision lines of any message (the system prompt may list them)."""
    schema = request_schema(body)
    messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
    user_text = "\n".join(str(m.get("content", "")) for m in messages if m.get("role") == "user")
    vision_lines = [
        line
        for m in messages
        if m.get("role") != "user"
        for line in str(m.get("content", "")).splitlines()
        if _VISION_LINE.match(line)
    ]
    user_text = "\n".join([*vision_lines, user_text])
    seed = int.from_bytes(hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()[:8], "big")
    if schema is None:
        return {"answer": user_text[:80] or "ok"}
    value = Faker.for_text(schema, user_text, seed, _users(messages, vision_lines)).instance()
    return value if isinstance(value, dict) else {"items": value}


def free_text_responder(body: dict[str, Any]) -> dict[str, Any]:
    """Like a server that reads ``sources`` as "array of string" and writes what it likes there: each
    citation is free text (a phrase, an id the prompt never showed), strings come padded with spaces.
    Everything else is schema-valid, so only our repairs stand between this answer and a failed job."""
    value = default_responder(body)
    seed = int.from_bytes(hashlib.sha256(json.dumps(body, sort_keys=True).encode()).digest()[:4], "big")
    rng = random.Random(seed)

    def scribble(node: Any) -> Any:
        if isinstance(node, dict):
            out = {k: scribble(v) for k, v in node.items()}
            if "sources" in out:
                out["sources"] = rng.sample(_FREE_CITATIONS, 2)
            if isinstance(out.get("title"), str):
                out["title"] = f"  {out['title']}  "
            return out
        if isinstance(node, list):
            return [scribble(v) for v in node]
        return node

    scribbled: dict[str, Any] = scribble(value)
    return scribbled


_FREE_CITATIONS = [
    "the vision statement",
    "S42",
    "see the key features",
    "S0",
    "the second paragraph",
    "users' needs",
]


def _users(messages: list[dict[str, Any]], vision_lines: list[str]) -> tuple[str, ...]:
    """The roles a real model would write stories for: the prompt's target users, else the roles the
    vision names (so the fake's answers pass the quality gate's persona check)."""
    for m in messages:
        for line in str(m.get("content", "")).splitlines():
            if line.startswith("Target users: ") and not line.endswith("(infer them from the vision)"):
                return tuple(role_phrase(u) for u in line.removeprefix("Target users: ").split(", ") if u)
    texts = [_VISION_LINE.sub("", line) for line in vision_lines]
    return tuple(named_roles(texts))


def request_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and isinstance(fmt.get("json_schema"), dict):
        schema = fmt["json_schema"].get("schema")
        if isinstance(schema, dict):
            return schema
    best: dict[str, Any] | None = None
    for message in body.get("messages", []):
        text = str(message.get("content", "")) if isinstance(message, dict) else ""
        for _, _, value in find_json_values(text):
            if isinstance(value, dict) and ("properties" in value or "$defs" in value):
                best = value  # the last schema shown wins: it is the one appended for this call
    return best


def _break(value: dict[str, Any]) -> dict[str, Any]:
    """Drop the first key of each item in the first list of objects (or of the object itself)."""
    for key, items in value.items():
        if isinstance(items, list) and items and all(isinstance(i, dict) for i in items):
            return {**value, key: [dict(list(i.items())[1:]) for i in items]}
    return dict(list(value.items())[1:])


def _error(status: int, message: str, kind: str) -> web.Response:
    return web.json_response({"error": {"message": message, "type": kind, "code": None}}, status=status)


def _reset(request: web.Request) -> NoReturn:
    transport = request.transport
    if transport is not None:
        transport.abort()  # RST without a response, like a crashed upstream
    raise asyncio.CancelledError  # stop aiohttp writing to the dead transport


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


async def _serve(args: argparse.Namespace) -> None:
    rates = {k: v for k, v in (("429", args.fault_rate_429), ("500", args.fault_rate_500)) if v}
    rates.update(
        {k: v for k, v in (("reset", args.fault_rate_reset), ("truncated", args.fault_rate_truncated)) if v}
    )
    fake = FakeLLM(
        responder=free_text_responder if args.free_text else None,
        latency=args.latency,
        throttle_above=args.throttle_above,
        throttle_retry_after=None if args.no_retry_after else args.retry_after,
        fault_rates=rates,
        api_key=args.api_key,
        seed=args.seed,
    )
    runner = web.AppRunner(fake.app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, args.host, args.port)
    await site.start()
    port = runner.addresses[0][1]
    print(f"LISTENING {port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    print(f"STATS {json.dumps(fake.stats())}", flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake OpenAI-compatible chat-completions server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--throttle-above", type=int, default=None)
    parser.add_argument("--retry-after", type=float, default=0.05, help="seconds announced on a 429")
    parser.add_argument("--fault-rate-429", type=float, default=0.0)
    parser.add_argument("--fault-rate-500", type=float, default=0.0)
    parser.add_argument("--fault-rate-reset", type=float, default=0.0)
    parser.add_argument("--fault-rate-truncated", type=float, default=0.0)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--free-text", action="store_true", help="free text in every citation")
    parser.add_argument(
        "--no-retry-after", action="store_true", help="throttle with a bare 429 (no Retry-After header)"
    )
    asyncio.run(_serve(parser.parse_args(argv)))


if __name__ == "__main__":
    main()
