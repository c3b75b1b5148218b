"""An OpenAI-compatible chat-completions provider (OpenAI, Azure OpenAI, Ollama, vLLM, LM Studio).

One HTTP call per ``complete``; no retries and no rate limiting here (the runner owns both). HTTP
outcomes become ``stages.errors`` exceptions with ``retry_after`` taken from the server's headers.
The API key is kept out of every message and repr.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import aiohttp
import structlog

from stages.errors import (
    ContextTooLong,
    OutputTruncated,
    ProviderError,
    ProviderPermanent,
    ProviderThrottled,
    ProviderTransient,
)
from stages.providers.base import ChatMessage, Completion, CompletionRequest

StructuredOutput = Literal["auto", "json_schema", "json_object", "prompt"]
Mode = Literal["json_schema", "json_schema_lean", "json_object", "prompt"]
_MODES = ("auto", "json_schema", "json_object", "prompt")
# json_schema_lean: the same schema without string lengths, which some strict-mode servers refuse
# (OpenAI lists minLength/maxLength as unsupported); the enums and the numeric and array bounds stay.
_FALLBACK: dict[str, Mode] = {
    "json_schema": "json_schema_lean",
    "json_schema_lean": "json_object",
    "json_object": "prompt",
}
_LENGTHS = frozenset({"minLength", "maxLength"})
_UNPARSED = re.compile(r"does not match the expected|failed to parse (the )?(model )?output", re.I)
_CONTEXT = re.compile(r"context (size|length|window)|exceed_context|too many tokens|maximum context", re.I)
_MESSAGE_MAX = 400
_KEYLIKE = re.compile(r"\b(sk|key|pk)-[A-Za-z0-9_\-*]{8,}")

SCHEMA_HINT = "Reply with one JSON object that validates against this JSON Schema:"
log = structlog.get_logger("backlogd.llm")

PROMPT_HINT = (
    "Answer with JSON only: no prose, no code fences, one JSON object valid against this JSON Schema:"
)


class OpenAIProvider:
    """The Provider protocol over ``POST {base_url}/chat/completions``."""

    name = "openai"

    def __init__(
        self,
        *,
        base_url: str,
        model: str,
        api_key: str | None,
        structured_output: StructuredOutput,
        timeout_seconds: float,
        max_tokens: int,
        temperature: float,
        azure_api_version: str | None = None,
        session: aiohttp.ClientSession | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if structured_output not in _MODES:
            raise ValueError(f"structured_output must be one of {_MODES}, got {structured_output!r}")
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be > 0")
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.structured_output: StructuredOutput = structured_output
        self.timeout_seconds = timeout_seconds
        self.max_tokens = max_tokens
        self.temperature = temperature
        self.azure_api_version = azure_api_version
        self._api_key = api_key or None
        self._session = session
        self._owns_session = session is None
        self._wall_clock = wall_clock
        # ``auto``: json_schema until the server refuses response_format, then what worked (remembered).
        self.mode: Mode = "json_schema" if structured_output == "auto" else structured_output

    def __repr__(self) -> str:
        return (
            f"OpenAIProvider(base_url={self.base_url!r}, model={self.model!r}, "
            f"structured_output={self.structured_output!r}, azure={self.azure_api_version is not None})"
        )

    async def aclose(self) -> None:
        """Close the session only if this provider created it."""
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def complete(self, request: CompletionRequest) -> Completion:
        """One chat completion; raises ProviderThrottled/Transient/Permanent on failure.

        With ``structured_output: auto`` a 400/422 refusal of ``response_format`` is retried at once in
        the next mode (json_schema → json_object → prompt), and the mode that worked is kept for every
        later call to this endpoint."""
        mode, sent = self.mode, 0
        while True:
            sent += 1
            status, headers, raw = await self._post(self.body(request, mode))
            if 200 <= status < 300:
                if mode != self.mode:
                    self.mode = mode  # remembered: later calls start here
                return self._completion(raw, mode, sent)
            if status == 500 and _UNPARSED.search(raw.decode("utf-8", "replace")[:600]):
                # llama.cpp could not parse what the model generated: cut at max_tokens mid-grammar
                raise OutputTruncated(error_message(raw))
            error = self._error(status, headers, raw, mode)
            fallback = _FALLBACK.get(mode)
            if (
                self.structured_output == "auto"
                and fallback is not None
                and status in (400, 422)
                and not isinstance(error, ContextTooLong)
            ):
                log.warning("llm_structured_output_refused", mode=mode, fallback=fallback, error=str(error))
                mode = fallback
                continue
            raise error

    async def _post(self, body: dict[str, Any]) -> tuple[int, Mapping[str, str], bytes]:
        session = self._ensure_session()
        try:
            async with asyncio.timeout(self.timeout_seconds):
                async with session.post(
                    self._url(), json=body, headers=self._headers(), params=self._params()
                ) as resp:
                    return resp.status, resp.headers, await resp.read()
        except TimeoutError:
            message = f"no answer within {self.timeout_seconds:g}s from {self._where()}"
            raise ProviderTransient(message) from None
        except aiohttp.ClientError as exc:
            raise ProviderTransient(f"connection to {self._where()} failed: {type(exc).__name__}") from None

    def body(self, request: CompletionRequest, mode: Mode | None = None) -> dict[str, Any]:
        """The JSON body for ``request`` in ``mode`` (default: the mode in use)."""
        mode = mode or self.mode
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [m.model_dump() for m in self._messages(request, mode)],
            "max_tokens": self.max_tokens,
            "temperature": self.temperature,
        }
        if mode in ("json_schema", "json_schema_lean"):
            schema = request.json_schema if mode == "json_schema" else _without(request.json_schema, _LENGTHS)
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {"name": request.schema_name, "schema": schema, "strict": True},
            }
        elif mode == "json_object":
            body["response_format"] = {"type": "json_object"}
        return body

    def _messages(self, request: CompletionRequest, mode: Mode) -> tuple[ChatMessage, ...]:
        if mode in ("json_schema", "json_schema_lean"):
            return request.messages
        hint = SCHEMA_HINT if mode == "json_object" else PROMPT_HINT
        schema_text = f"{hint}\n{json.dumps(request.json_schema, separators=(',', ':'))}"
        msgs = list(request.messages)
        for i, m in enumerate(msgs):
            if m.role == "system":
                msgs[i] = ChatMessage(role="system", content=f"{m.content}\n\n{schema_text}")
                return tuple(msgs)
        return (ChatMessage(role="system", content=schema_text), *msgs)

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Total time is bounded by asyncio.timeout; the connect bound catches a dead host early.
            timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.timeout_seconds)
            self._session = aiohttp.ClientSession(timeout=timeout)
            self._owns_session = True
        return self._session

    def _url(self) -> str:
        return f"{self.base_url}/chat/completions"

    def _where(self) -> str:
        return self.base_url

    def _params(self) -> dict[str, str]:
        return {"api-version": self.azure_api_version} if self.azure_api_version else {}

    def _headers(self) -> dict[str, str]:
        if self._api_key is None:
            return {}
        if self.azure_api_version:
            return {"api-key": self._api_key}
        return {"Authorization": f"Bearer {self._api_key}"}

    def _completion(self, raw: bytes, mode: Mode, requests: int) -> Completion:
        try:
            data = json.loads(raw)
            choice = data["choices"][0]
            content = choice["message"]["content"]
            if not isinstance(content, str):
                refusal = choice["message"].get("refusal")
                detail = f"the model refused: {refusal}" if refusal else "message.content is not a string"
                raise ProviderTransient(f"unexpected answer from {self._where()}: {self._redact(detail)}")
            usage = data.get("usage") or {}
            return Completion(
                content=content,
                finish_reason=choice.get("finish_reason") or "stop",
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                model=str(data.get("model") or self.model),
                structured_output=mode,
                requests=requests,
            )
        except ProviderError:
            raise
        except (ValueError, TypeError, KeyError, IndexError, AttributeError):
            raise ProviderTransient(f"malformed chat completion from {self._where()}") from None

    def _error(self, status: int, headers: Mapping[str, str], raw: bytes, mode: Mode) -> ProviderError:
        text = self._redact(error_message(raw))
        message = f"HTTP {status} from {self._where()}: {text}"
        retry_after = parse_retry_after(headers, self._wall_clock())
        if status in (429, 503):  # the provider's pacing (503: overloaded), never a failed attempt
            return ProviderThrottled(message, retry_after=retry_after)
        if status in (400, 413, 422) and _CONTEXT.search(text + raw.decode("utf-8", "replace")[:400]):
            return ContextTooLong(
                f"{message} — the prompt does not fit the model's context window: raise the server's "
                "context size (llama.cpp -c, Ollama num_ctx) or shorten the vision"
            )
        if status in (400, 422) and mode != "prompt":
            message += (
                f" (sent with structured_output {mode}: if the server does not support that "
                "response_format, set llm.structured_output to auto or prompt)"
            )
        if status in (408, 409) or status >= 500:
            return ProviderTransient(message, retry_after=retry_after)
        if 400 <= status < 500:  # 400/401/403/404/422...: the same call cannot succeed
            return ProviderPermanent(message)
        return ProviderTransient(message, retry_after=retry_after)

    def _redact(self, text: str) -> str:
        if self._api_key:
            text = text.replace(self._api_key, "***")
        return _KEYLIKE.sub("***", text)


def _without(node: Any, keys: frozenset[str]) -> Any:
    """A copy of a JSON Schema without ``keys`` anywhere (``properties`` names are left alone)."""
    if isinstance(node, dict):
        return {
            k: (
                {name: _without(sub, keys) for name, sub in v.items()}
                if k in ("properties", "$defs")
                else _without(v, keys)
            )
            for k, v in node.items()
            if k not in keys
        }
    if isinstance(node, list):
        return [_without(v, keys) for v in node]
    return node


def error_message(raw: bytes) -> str:
    """The server's own error text: OpenAI ``error.message``, Ollama ``error``, vLLM ``message``,
    FastAPI ``detail``; else the start of the body."""
    text = raw.decode("utf-8", errors="replace")
    try:
        data = json.loads(text)
    except ValueError:
        return text.strip()[:_MESSAGE_MAX] or "(empty body)"
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])[:_MESSAGE_MAX]
        for key in ("error", "message", "detail"):
            if data.get(key):
                return str(data[key])[:_MESSAGE_MAX]
    return text.strip()[:_MESSAGE_MAX]


def parse_retry_after(headers: Mapping[str, str], now: float) -> float | None:
    """Seconds to wait from ``retry-after-ms``, or ``Retry-After`` as seconds or an HTTP-date
    (``now`` is the wall-clock time the date is measured against). None when absent or unreadable."""
    ms = _seconds(headers.get("retry-after-ms"))
    if ms is not None:
        return ms / 1000.0
    value = headers.get("Retry-After")
    if not value:
        return None
    seconds = _seconds(value)
    if seconds is not None:
        return seconds
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now)
    except (TypeError, ValueError, IndexError):
        return None


def _seconds(value: str | None) -> float | None:
    try:
        number = float(value) if value else math.nan
    except ValueError:
        return None
    return max(0.0, number) if math.isfinite(number) else None
