"""What one generation call cost and produced, and what to tell the user when its answers stayed unusable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from outbox.records import CallRow
from vocab import CallStatus


@dataclass
class Tally:
    """What one call cost: attempts (throttles excluded), HTTP requests, throttles, the mode last used."""

    attempts: int = 0
    requests: int = 0
    throttled: int = 0
    mode: str = ""


def output_hint(mode: str, attempts: int) -> str:
    """The setting to change when a model's answers stayed unusable in a mode without a schema."""
    if mode in ("json_object", "prompt"):
        return (
            f" — {attempts} answers in structured_output {mode} mode were unusable: set "
            "llm.structured_output to json_schema (or auto) on a server that enforces JSON Schemas, "
            "or use a larger model"
        )
    return ""


@dataclass
class CallOutcome:
    bodies: list[dict[str, Any]]
    attempts: int
    prompt_hash: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    latency_ms: float = 0.0

    def row(self, job_id: str, key: str, stage: str, parent_id: str | None) -> CallRow:
        """The call record committed with the call's items: a restart never repeats it."""
        return CallRow(
            job_id=job_id,
            call_key=key,
            stage=stage,
            parent_id=parent_id,
            status=CallStatus.DONE,
            prompt_hash=self.prompt_hash,
            attempts=self.attempts,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            latency_ms=self.latency_ms,
        )
