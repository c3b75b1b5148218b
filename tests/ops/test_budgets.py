"""Hole 4 and 6: input is parsed within budgets. A YAML alias bomb, 100,000-deep JSON, a 5,000-digit
integer and an out-of-range Last-Event-ID are clear 400s (never a 500, never a blown-up backlog);
visions carry no control characters; booleans are strict."""

from __future__ import annotations

import time
import tracemalloc
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from stages.errors import VisionError
from stages.vision import parse_bytes
from tests.ops.conftest import VISION, AppFactory

Client = TestClient[Any, Any]
ANCHORED = "Lenders lend drills to neighbours. " * 1700  # ~60 KB


def alias_bomb() -> str:
    """The probe: a ~62 KB YAML vision whose key_features repeat one anchored ~60 KB string."""
    aliases = ", ".join(["*big"] * 500)
    return f"vision: Riders rent bikes.\ntarget_users: [&big '{ANCHORED}']\nkey_features: [{aliases}]\n"


async def _error(resp: Any, status: int) -> dict[str, Any]:
    body: dict[str, Any] = await resp.json()
    assert resp.status == status, body
    error: dict[str, Any] = body["error"]
    return error


def test_the_alias_bomb_is_refused_at_once_with_memory_flat() -> None:
    """Parsing the 62 KB alias bomb (as the CLI does) fails in well under a second, naming the line,
    without allocating more than a few times the file's size."""
    raw = alias_bomb().encode()
    assert 55_000 < len(raw) < 70_000
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(VisionError, match=r"line \d+: YAML aliases"):
            parse_bytes(raw, "bomb.yaml")
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 0.5 and peak < 20 * len(raw), (elapsed, peak)


async def test_the_alias_bomb_through_the_api_is_a_400_and_nothing_is_stored(make_client: AppFactory) -> None:
    """Sent as a YAML file (vision_format=yaml) or pasted into the vision field, the bomb is a 400."""
    client, services = await make_client()
    started = time.perf_counter()
    resp = await client.post("/api/jobs?vision_format=yaml", json={"vision": alias_bomb()})
    error = await _error(resp, 400)
    assert error["code"] == "bad_vision" and "alias" in error["message"]
    pasted = await _error(await client.post("/api/jobs", json={"vision": alias_bomb()}), 400)
    assert "alias" in pasted["message"]
    assert time.perf_counter() - started < 1.0
    assert await services.store.list_jobs() == []


async def test_the_vision_limit_applies_to_the_parsed_vision(make_client: AppFactory) -> None:
    """A structured vision over server.max_vision_bytes once parsed is a 413 naming the limit."""
    client, _ = await make_client(server={"max_vision_bytes": 2000})
    vision = {"vision": "Riders rent bikes.", "key_features": ["Bikes are rented by the hour."] * 100}
    error = await _error(await client.post("/api/jobs", json={"vision": vision}), 413)
    assert error["code"] == "vision_too_large" and error["details"][0]["limit"] == 2000


@pytest.mark.parametrize("path", ["/api/jobs", "/api/session"])
async def test_deeply_nested_json_is_a_400(make_client: AppFactory, path: str) -> None:
    """100,000-deep JSON is a 400 naming the body, on the jobs API and on the login (no token set)."""
    client, _ = await make_client(server={"max_body_bytes": 1_000_000})
    deep = "[" * 100_000 + "]" * 100_000
    resp = await client.post(path, data=deep, headers={"Content-Type": "application/json"})
    error = await _error(resp, 400)
    assert error["code"] == "invalid_json" and "nested" in error["message"]


async def test_a_5000_digit_integer_is_a_400_naming_the_field(make_client: AppFactory) -> None:
    """An integer of 5,000 digits is a 400 that says where it is (limits.max_epics)."""
    client, services = await make_client()
    body = '{"vision": "Riders rent bikes.", "limits": {"max_epics": ' + "9" * 5000 + "}}"
    resp = await client.post("/api/jobs", data=body, headers={"Content-Type": "application/json"})
    error = await _error(resp, 400)
    assert error["details"][0]["field"] == "limits.max_epics" and "5000 digits" in error["message"]
    assert await services.store.list_jobs() == []


@pytest.mark.parametrize("last_id", ["99999999999999999999", str(2**53 + 1), "-1", "12abc", "1e3"])
async def test_a_last_event_id_outside_0_to_2_53_is_a_400_before_the_stream(
    make_client: AppFactory, last_id: str
) -> None:
    """On a running job, a Last-Event-ID that is not an integer in 0…2^53 is a JSON 400 (not a stream
    that breaks after its headers, which a browser would retry with the same id forever)."""
    client, services = await make_client(azure_devops={"target": "emulator", "upload_mode": "manual"})
    job_id = (await (await client.post("/api/jobs", json={"vision": VISION})).json())["job_id"]
    resp = await client.get(f"/api/progress/stream/{job_id}", headers={"Last-Event-ID": last_id})
    error = await _error(resp, 400)
    assert error["details"][0]["field"] == "Last-Event-ID"
    assert resp.content_type == "application/json"
    await services.jobs.wait(job_id)
    edge = await client.get(f"/api/progress/stream/{job_id}?lastEventId={2**53}")
    assert edge.status in (200, 204)
    edge.close()


@pytest.mark.parametrize(
    ("vision", "field", "char"),
    [
        ("Riders rent\x00 bikes.", "vision", "U+0000 at character 12"),
        ({"vision": "Riders rent bikes.", "key_features": ["ok", "bad\x1b[2J"]}, "key_features[1]", "U+001B"),
    ],
)
async def test_nul_and_control_characters_in_a_vision_are_400s_naming_where(
    make_client: AppFactory, vision: Any, field: str, char: str
) -> None:
    """NUL and other C0 controls are refused with the field and the character position."""
    client, services = await make_client()
    error = await _error(await client.post("/api/jobs", json={"vision": vision}), 400)
    assert error["code"] == "bad_vision" and field in error["message"] and char in error["message"]
    assert await services.store.list_jobs() == []


@pytest.mark.parametrize("value", ["yes", 1, "true", 0])
async def test_booleans_are_strict(make_client: AppFactory, value: Any) -> None:
    """``"include_qa": "yes"`` (or 1) is a 400 naming the field, not a silent true."""
    client, _ = await make_client()
    error = await _error(await client.post("/api/jobs", json={"vision": VISION, "include_qa": value}), 400)
    assert error["details"][0]["field"] == "include_qa"


@pytest.mark.parametrize("value", [True, "3", 2.5])
async def test_integers_are_strict(make_client: AppFactory, value: Any) -> None:
    """``"max_epics": true`` (or "3", or 2.5) is a 400 naming the field, not a silent 1 or 3."""
    client, _ = await make_client()
    body = {"vision": VISION, "limits": {"max_epics": value}}
    error = await _error(await client.post("/api/jobs", json=body), 400)
    assert error["details"][0]["field"] == "limits.max_epics"
