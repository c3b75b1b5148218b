"""Errors of the backlog domain and of LLM providers.

StagesError
├── VisionError              bad vision input (empty, binary, not UTF-8, control characters, YAML
│   │                        aliases, bad structure)
│   └── VisionTooLarge       the parsed, expanded vision is over the size limit (``size``, ``limit``)
├── OutputError              an LLM answer that cannot be accepted as is
│   ├── OutputInvalid        not JSON, or violates the schema/checks (``problems`` for a repair turn)
│   └── OutputTruncated      finish_reason == "length": never accepted, retried asking for fewer
└── ProviderError            the provider call failed
    ├── ProviderTransient    5xx, reset, timeout: retry this call after ``retry_after`` (or backoff)
    │   └── ProviderThrottled  429 / Retry-After: the whole provider pauses until the deadline
    └── ProviderPermanent    401/403/400-class errors: retrying will not help
        └── ContextTooLong   the prompt exceeds the model's context window (a smaller prompt might fit)
"""

from __future__ import annotations


class StagesError(Exception):
    """Base of every error raised by the stages package."""


class VisionError(StagesError):
    """The vision input is unusable; the message says what and where."""


class VisionTooLarge(VisionError):
    def __init__(self, message: str, size: int, limit: int) -> None:
        super().__init__(message)
        self.size = size
        self.limit = limit


class OutputError(StagesError):
    """An LLM answer that cannot be accepted as is."""


class OutputInvalid(OutputError):
    def __init__(self, problems: list[str], raw: str = "") -> None:
        super().__init__("; ".join(problems[:8]))
        self.problems = problems
        self.raw = raw


class OutputTruncated(OutputError):
    def __init__(self, raw: str = "") -> None:
        super().__init__("the answer was cut off (finish_reason=length)")
        self.raw = raw


class ProviderError(StagesError):
    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderTransient(ProviderError):
    """A failure worth retrying: 5xx, connection reset, timeout."""


class ProviderThrottled(ProviderTransient):
    """429 or an explicit Retry-After: every call to this provider waits until the deadline."""


class ProviderPermanent(ProviderError):
    """Auth or request errors: retrying the same call cannot succeed."""


class ContextTooLong(ProviderPermanent):
    """The server's context window is smaller than the prompt: the same prompt can never succeed."""
