"""The provider contract: one chat completion for one stage call.

Providers do no retrying and no rate limiting of their own: the runner owns retries (per call),
the shared semaphore and the token bucket. A provider raises ``ProviderThrottled`` (with
``retry_after``), ``ProviderTransient`` or ``ProviderPermanent`` from ``stages.errors``.
"""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict


class ChatMessage(BaseModel):
    model_config = ConfigDict(frozen=True)

    role: Literal["system", "user", "assistant"]
    content: str


class CompletionRequest(BaseModel):
    """What one stage call asks for. ``context`` carries the structured inputs (vision, parent chain,
    sibling titles, limits) so a provider that does not read prose (the offline one) can use them."""

    model_config = ConfigDict(frozen=True)

    stage: str
    messages: tuple[ChatMessage, ...]
    schema_name: str
    json_schema: dict[str, Any]
    max_items: int
    context: dict[str, Any]


class Completion(BaseModel):
    model_config = ConfigDict(frozen=True)

    content: str
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    model: str = ""
    structured_output: str = ""  # the mode the answer was asked in (auto resolves to one)
    requests: int = 1  # HTTP requests this answer took (a refused response_format adds one)


class Provider(Protocol):
    name: str

    async def complete(self, request: CompletionRequest) -> Completion: ...

    async def aclose(self) -> None: ...
