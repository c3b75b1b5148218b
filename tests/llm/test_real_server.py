"""Jobs against a real model (SmolLM2-135M-Instruct on llama.cpp): they end, they say why when they
cannot finish, and nothing half-formed is ever stored."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

from service.settings import Settings
from stages.models import OUT_MODELS
from tests.conftest import JobResult, make_settings, run_job
from tests.llm.conftest import LlamaServer

pytestmark = [pytest.mark.llm, pytest.mark.timeout(900)]

VISION = {
    "title": "Tool library",
    "vision": "Neighbours lend each other tools through a shared catalogue. "
    "Borrowers book a tool for a date.",
    "key_features": ["Owners ask for a deposit that is returned when the tool comes back"],
    "target_users": ["tool owners", "borrowers"],
}
LIMITS = {
    "max_epics": 1,
    "max_features_per_epic": 1,
    "max_stories_per_feature": 2,
    "max_tasks_per_story": 1,
    "max_test_cases_per_story": 1,
}
JOB_DEADLINE = 300.0  # seconds: "within 5 minutes", however the model behaves


def settings(tmp_path: Path, llama: LlamaServer, mode: str, **llm: Any) -> Settings:
    return make_settings(
        tmp_path,
        llm={
            "provider": "openai",
            "base_url": llama.base_url,
            "model": "smollm2",
            "structured_output": mode,
            "max_tokens": 1536,  # the prompt (~500 tokens) and the answer share the 2048-token context
            "timeout_seconds": 240,
            "max_concurrency": 1,
            **llm,
        },
        workflow={"include_qa": True, "limits": LIMITS},
    )


def assert_every_item_valid(result: JobResult, vision_ids: set[str]) -> None:
    """Each stored generated item validates against its model and cites only real sentences."""
    for item in result.items:
        model = OUT_MODELS.get(item.kind)
        if model is None:  # test plans and suites are ours, not the model's
            continue
        model.model_validate(item.body)
        assert set(item.body["sources"]) <= vision_ids, item.body["sources"]


def record(name: str, started: float, result: JobResult) -> dict[str, Any]:
    """One line for docs/benchmarks.md: wall, items, tokens per second while generating, repairs."""
    generating = sum(c.latency_ms for c in result.calls if c.status == "done") / 1000
    tokens = sum(c.completion_tokens for c in result.calls)
    llm = result.job.metadata.get("llm") or {}
    row = {
        "run": name,
        "status": result.job.status,
        "wall_s": round(time.monotonic() - started, 1),
        "items": len([i for i in result.items if i.kind in OUT_MODELS]),
        "calls_done": sum(1 for c in result.calls if c.status == "done"),
        "calls_failed": sum(1 for c in result.calls if c.status == "failed"),
        "requests": llm.get("requests"),
        "completion_tokens": tokens,
        "tokens_per_s": round(tokens / generating, 1) if generating else None,
        "repairs": llm.get("repairs"),
        "error": (result.job.error or "")[:200],
    }
    report = os.environ.get("LLM_REPORT")
    if report:
        with open(report, "a", encoding="utf-8") as out:
            out.write(json.dumps(row) + "\n")
    print(json.dumps(row))
    return row


async def test_small_vision_in_json_schema_mode_completes_with_valid_items(
    tmp_path: Path, llama: LlamaServer
) -> None:
    """With the schema enforced by the server's grammar, a 1x1x2 job with QA completes (any failed call
    keeps its error) and every stored item validates."""
    started = time.monotonic()
    async with asyncio.timeout(JOB_DEADLINE * 2):
        result = await run_job(settings(tmp_path, llama, "json_schema"), VISION)
    record("json_schema", started, result)
    assert result.job.status in ("completed", "completed_with_errors"), result.job.error
    failed = [c for c in result.calls if c.status == "failed"]
    assert all(c.error for c in failed)
    assert (result.job.status == "completed") == (not failed)
    assert "epic" in {i.kind for i in result.items}
    assert_every_item_valid(result, {f"S{i}" for i in range(1, 10)})


@pytest.mark.parametrize("mode", ["json_object", "prompt"])
async def test_modes_without_a_schema_end_in_time_and_name_the_setting(
    tmp_path: Path, llama: LlamaServer, mode: str
) -> None:
    """Where a small model may ramble or answer prose, the job still ends within 5 minutes, completed or
    failed naming structured_output, and never stores a partial item."""
    started = time.monotonic()
    async with asyncio.timeout(JOB_DEADLINE):
        # bounded answers: without a grammar a small model may ramble until max_tokens on every call
        result = await run_job(settings(tmp_path, llama, mode, max_attempts=2, max_tokens=400), VISION)
    record(mode, started, result)
    assert result.job.status in ("completed", "completed_with_errors", "failed")
    if result.job.status == "failed":
        assert "structured_output" in (result.job.error or "")
    for call in result.calls:
        if call.status == "failed":
            assert call.error and ("structured_output" in call.error or "HTTP" in call.error), call.error
    assert_every_item_valid(result, {f"S{i}" for i in range(1, 10)})


async def test_a_vision_longer_than_the_context_fails_clearly(tmp_path: Path, llama: LlamaServer) -> None:
    """A vision whose prompt exceeds the server's 2048-token context ends the job at once with an error
    that says so, instead of hanging or retrying the same prompt."""
    long_vision = {
        "title": "Everything app",
        "vision": " ".join(
            f"Requirement {n}: the service records each {w} request with its owner and date."
            for n, w in enumerate(["booking", "payment", "refund", "review", "message", "invoice"] * 30)
        ),
    }
    started = time.monotonic()
    async with asyncio.timeout(120):
        result = await run_job(settings(tmp_path, llama, "json_schema"), long_vision)
    record("context_too_long", started, result)
    assert result.job.status == "failed"
    assert "context" in (result.job.error or ""), result.job.error
    (call,) = result.calls
    assert call.attempts == 1  # a permanent error: the same prompt is not sent again
    assert result.items == []


async def test_max_tokens_too_small_is_retried_for_fewer_items_and_stores_nothing_partial(
    tmp_path: Path, llama: LlamaServer
) -> None:
    """An answer cut by max_tokens is never accepted: the call is retried asking for fewer items and,
    when even one item does not fit, fails with the reason while nothing partial is stored."""
    limits = {**LIMITS, "max_epics": 4}
    base = settings(tmp_path, llama, "json_schema", max_tokens=64, max_attempts=3)
    tight = base.model_copy(
        update={
            "workflow": base.workflow.model_copy(
                update={"limits": base.workflow.limits.model_copy(update=limits)}
            )
        }
    )
    started = time.monotonic()
    async with asyncio.timeout(JOB_DEADLINE):
        result = await run_job(tight, VISION)
    record("max_tokens_64", started, result)
    (epic,) = result.call("epics:")
    if epic.status == "failed":
        assert epic.attempts == 3 and "cut off" in (epic.error or ""), epic.error
        assert result.job.status == "failed"
    assert_every_item_valid(result, {f"S{i}" for i in range(1, 10)})
