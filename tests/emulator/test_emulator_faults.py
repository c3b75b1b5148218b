"""Fault injection: each knob behaves like the service's failure it stands for, deterministically."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from emulator import EMULATOR_STATE
from tests.emulator.conftest import Ado

TAG_QUERY = "SELECT [System.Id] FROM WorkItems WHERE [System.Tags] CONTAINS 'bk:1'"


async def _create(emu: Ado, tags: str = "bk:1") -> Any:
    return await emu.create("Task", {"System.Title": "x", "System.Tags": tags})


async def test_throttle_is_429_with_rate_limit_headers_and_writes_nothing(emu: Ado) -> None:
    """A throttled create gets 429, TF400733, a fractional Retry-After and X-RateLimit-*; nothing is saved."""
    await emu.set_faults(throttle=1.0, retry_after_seconds=0.05)
    reply = await _create(emu)
    assert reply.status == 429 and "TF400733" in reply.json["message"]
    assert reply.headers["Retry-After"] == "0.05"
    assert reply.headers["X-RateLimit-Remaining"] == "0" and reply.headers["X-RateLimit-Limit"] == "200"
    assert int(reply.headers["X-RateLimit-Reset"]) >= int(time.time())
    assert "X-RateLimit-Resource" in reply.headers
    state = await emu.state()
    assert state["work_items"] == [] and state["faults_injected"] == {"throttle": 1}


async def test_early_requests_counted_per_identity_until_deadline(emu: Ado, emu_server: TestServer) -> None:
    """A request arriving before the announced Retry-After deadline counts as early; after it, not."""
    now = [100.0]
    emu_server.app[EMULATOR_STATE].clock = lambda: now[0]
    await emu.set_faults(throttle=1.0, retry_after_seconds=2.0, limit=1)
    assert (await _create(emu)).status == 429
    now[0] = 101.0
    assert (await _create(emu)).status == 200
    now[0] = 102.5
    assert (await _create(emu)).status == 200
    assert (await emu.state())["early_requests"] == 1


async def test_delay_mode_is_200_with_delay_headers(emu: Ado) -> None:
    """Delay mode sleeps, then answers 200 with X-RateLimit-Delay and Retry-After; the item is saved."""
    await emu.set_faults(delay=1.0, delay_seconds=0.01, retry_after_seconds=0.02)
    reply = await _create(emu)
    assert reply.status == 200
    assert reply.headers["X-RateLimit-Delay"] == "0.010" and reply.headers["Retry-After"] == "0.02"
    assert len((await emu.state())["work_items"]) == 1


async def test_warning_headers_on_200(emu: Ado) -> None:
    """Warning mode returns a normal 200 carrying Retry-After and a low X-RateLimit-Remaining."""
    await emu.set_faults(warning=1.0, retry_after_seconds=0.02)
    reply = await _create(emu)
    assert reply.status == 200 and reply.headers["Retry-After"] == "0.02"
    assert int(reply.headers["X-RateLimit-Remaining"]) < 10 and "X-RateLimit-Delay" not in reply.headers


@pytest.mark.parametrize("html", [False, True])
async def test_503_json_or_html_writes_nothing(emu: Ado, html: bool) -> None:
    """503 comes as TF10216 JSON or as an HTML page, and nothing is written."""
    await emu.set_faults(error_503=1.0, error_503_html=html)
    reply = await _create(emu)
    assert reply.status == 503
    if html:
        assert reply.headers["Content-Type"].startswith("text/html")
    else:
        assert "TF10216" in reply.json["message"]
    assert (await emu.state())["work_items"] == []


async def test_500_before_write(emu: Ado) -> None:
    """A 500 TF246020 happens before the write: no item exists afterwards."""
    await emu.set_faults(error_500=1.0)
    reply = await _create(emu)
    assert reply.status == 500 and "TF246020" in reply.json["message"]
    assert (await emu.state())["work_items"] == []


async def test_reset_drops_connection_before_processing(emu: Ado) -> None:
    """A reset closes the socket with no response, and nothing is written."""
    await emu.set_faults(reset=1.0)
    with pytest.raises(aiohttp.ClientConnectionError):
        await _create(emu)
    assert (await emu.state())["work_items"] == []


async def test_commit_then_lose_response_by_disconnect(emu: Ado) -> None:
    """The create is committed and visible to WIQL and GET, but the client only sees a disconnect."""
    await emu.set_faults(lose_response=1.0, limit=1)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await _create(emu)
    found = await emu.wiql(TAG_QUERY)
    assert [w["id"] for w in found.json["workItems"]] == [1]
    assert (await emu.request("GET", "/backlogd/_apis/wit/workitems/1")).status == 200
    assert (await emu.state())["creates_by_tag"]["bk:1"] == 1


async def test_commit_then_502(emu: Ado) -> None:
    """In 502 mode the write is committed and the client gets a 502 Bad Gateway."""
    await emu.set_faults(lose_response=1.0, lose_response_mode="502")
    reply = await _create(emu)
    assert reply.status == 502
    assert len((await emu.state())["work_items"]) == 1


async def test_slow_response_commits_before_client_timeout(emu: Ado) -> None:
    """A slow response outlasts the client's timeout, yet the item was written."""
    await emu.set_faults(slow=1.0, slow_seconds=0.3)
    with pytest.raises(asyncio.TimeoutError):
        async with asyncio.timeout(0.05):
            await _create(emu)
    assert len((await emu.state())["work_items"]) == 1


async def test_every_nth_and_routes_scope(emu: Ado) -> None:
    """every_nth throttles exactly the 3rd and 6th create; WIQL (not in routes) is never faulted."""
    await emu.set_faults(every_nth={"throttle": 3}, routes=["create"], retry_after_seconds=0.001)
    statuses = []
    for i in range(6):
        statuses.append((await _create(emu, f"k{i}")).status)
        assert (await emu.wiql(TAG_QUERY)).status == 200
    assert statuses == [200, 200, 429, 200, 200, 429]


async def test_limit_stops_injection(emu: Ado) -> None:
    """With limit=1 only the first matching call is faulted."""
    await emu.set_faults(error_500=1.0, limit=1)
    assert [(await _create(emu)).status for _ in range(3)] == [500, 200, 200]


async def _statuses(emu: Ado, seed: int) -> list[int]:
    await emu.request("POST", "/_emulator/reset")
    await emu.set_faults(error_500=0.5, seed=seed)
    return [(await _create(emu)).status for _ in range(12)]


async def test_probabilities_are_seeded_and_deterministic(emu: Ado) -> None:
    """The same seed yields the same fault sequence; faults really are mixed in."""
    first, second = await _statuses(emu, 7), await _statuses(emu, 7)
    assert first == second and {200, 500} == set(first)


async def test_any_route_class_and_latency(emu: Ado) -> None:
    """routes=["any"] faults every API route class; latency_seconds delays every API request."""
    await emu.set_faults(error_503=1.0, routes=["any"])
    assert (await emu.wiql(TAG_QUERY)).status == 503
    assert (await emu.request("GET", "/backlogd/_apis/projects/Backlogd")).status == 503
    await emu.set_faults(latency_seconds=0.03)
    started = time.monotonic()
    assert (await emu.request("GET", "/backlogd/_apis/projects/Backlogd")).status == 200
    assert time.monotonic() - started >= 0.03


async def test_fault_knob_validation_and_reset(emu: Ado) -> None:
    """Bad fault JSON is a 400; reset empties the organization but never hands out an id again."""
    assert (await emu.set_faults(throttle=2.0)).status == 400
    assert (await emu.set_faults(bogus=1)).status == 400
    first = (await _create(emu)).json["id"]
    await emu.request("POST", "/_emulator/reset")
    assert (await emu.state())["work_items"] == []
    assert (await _create(emu)).json["id"] > first


async def test_wiql_visibility_lag(emu: Ado, emu_server: TestServer) -> None:
    """With a WIQL lag, a fresh item is invisible to WIQL until the lag has passed, yet GET finds it."""
    now = [50.0]
    emu_server.app[EMULATOR_STATE].clock = lambda: now[0]
    await emu.set_faults(wiql_lag_seconds=1.0)
    await _create(emu)
    assert (await emu.wiql(TAG_QUERY)).json["workItems"] == []
    assert (await emu.request("GET", "/backlogd/_apis/wit/workitems/1")).status == 200
    now[0] = 51.0
    assert len((await emu.wiql(TAG_QUERY)).json["workItems"]) == 1


async def test_enforced_retry_after_throttles_the_whole_identity(emu: Ado, emu_server: TestServer) -> None:
    """With enforce_retry_after, any route from a throttled identity gets 429 until the deadline passes."""
    now = [10.0]
    emu_server.app[EMULATOR_STATE].clock = lambda: now[0]
    await emu.set_faults(throttle=1.0, limit=1, retry_after_seconds=3.0, enforce_retry_after=True)
    assert (await _create(emu)).status == 429
    now[0] = 11.0
    early = await emu.wiql(TAG_QUERY)
    assert early.status == 429 and early.headers["Retry-After"] == "2"
    now[0] = 13.5
    assert (await emu.wiql(TAG_QUERY)).status == 200
    assert (await emu.state())["early_requests"] == 1
