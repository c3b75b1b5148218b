"""The AIMD control law of AdaptiveLimiter: when the limit grows, when it is cut, and its bounds."""

from __future__ import annotations

import asyncio

import pytest

from hardware.aimd import AdaptiveLimiter


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_constructor_rejects_inconsistent_bounds() -> None:
    """floor <= initial <= ceiling and a decrease factor in [0.5, 1) are enforced at construction."""
    with pytest.raises(ValueError):
        AdaptiveLimiter(4, initial=5)
    with pytest.raises(ValueError):
        AdaptiveLimiter(4, floor=0)
    with pytest.raises(ValueError):
        AdaptiveLimiter(4, decrease=1.0)
    with pytest.raises(ValueError):
        AdaptiveLimiter(4, rate_per_second=0)
    assert AdaptiveLimiter(4).limit == 4


def test_cut_is_multiplicative_and_respects_floor() -> None:
    """A throttle multiplies the limit by ``decrease`` (at least -1) and never goes below the floor."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(20, decrease=0.5, floor=3, clock=clock)
    limiter.throttled(None)
    assert limiter.limit == 10
    for _ in range(5):
        clock.now += 10
        limiter.throttled(None)
    assert limiter.limit == 3


async def test_burst_of_throttles_from_one_overload_cuts_once() -> None:
    """Requests granted before a cut that all come back 429 reduce the limit only once."""
    limiter = AdaptiveLimiter(10)
    contexts = [limiter.slot() for _ in range(8)]
    for context in contexts:
        await context.__aenter__()
    try:
        limiter.throttled(None)  # each of the eight reports its 429 from inside its own slot
        for _ in range(7):
            limiter.throttled(None)
    finally:
        for context in contexts:
            await context.__aexit__(None, None, None)
    assert (limiter.limit, limiter.decreases, limiter.throttles) == (9, 1, 8)
    async with limiter.slot():  # granted after the cut: its 429 is new evidence
        limiter.throttled(None)
    assert limiter.limit == 8


def test_throttles_outside_a_slot_are_deduplicated_by_time() -> None:
    """Without slot context, throttles within one latency/Retry-After window count as one overload."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(10, clock=clock)
    limiter.throttled(0.5)
    clock.now += 0.2
    limiter.throttled(0.5)
    assert limiter.limit == 9
    clock.now += 0.4
    limiter.throttled(None)
    assert limiter.limit == 8


def test_throttle_with_retry_after_pauses_and_pause_only_extends() -> None:
    """Retry-After becomes a shared pause deadline, and a shorter later pause never shortens it."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(4, clock=clock)
    limiter.throttled(2.0)
    assert limiter.paused_until == 1002.0
    limiter.pause(0.5)
    assert limiter.paused_until == 1002.0
    limiter.pause(3.0)
    assert limiter.paused_until == 1003.0
    assert limiter.snapshot()["pause_remaining"] == 3.0


async def test_growth_needs_the_limit_in_use() -> None:
    """Successes while fewer than half the slots are in use do not grow the limit."""
    limiter = AdaptiveLimiter(10, initial=4)
    for _ in range(20):
        async with limiter.slot():
            limiter.succeeded(0.1)
    assert limiter.limit == 4


async def test_slow_start_grows_per_success_up_to_ceiling() -> None:
    """Before the first throttle each success at full use adds one, never beyond the ceiling."""
    limiter = AdaptiveLimiter(6, initial=3)
    contexts = [limiter.slot() for _ in range(3)]
    for context in contexts:
        await context.__aenter__()
    for _ in range(10):
        limiter.succeeded(0.1)
    for context in contexts:
        await context.__aexit__(None, None, None)
    assert limiter.limit == 6


async def test_latency_spike_is_no_evidence_of_headroom() -> None:
    """A success slower than 1.5x the smoothed latency does not grow the limit."""
    limiter = AdaptiveLimiter(6, initial=2)
    async with limiter.slot(), limiter.slot():
        limiter.succeeded(0.1)
        assert limiter.limit == 3
        limiter.succeeded(0.5)
        assert limiter.limit == 3
        limiter.succeeded(0.1)
        assert limiter.limit == 4


async def test_after_a_throttle_growth_is_one_per_window() -> None:
    """After a cut the limit grows by one per ``limit`` successes, not by one per success."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(20, initial=10, clock=clock)
    limiter.throttled(None)
    assert limiter.limit == 9
    clock.now += 60  # past the backoff pause and the hold before probing the cut's level again
    contexts = [limiter.slot() for _ in range(9)]
    for context in contexts:
        await context.__aenter__()
    for _ in range(8):
        limiter.succeeded(0.1)
    assert limiter.limit == 9
    limiter.succeeded(0.1)
    assert limiter.limit == 10
    for context in contexts:
        await context.__aexit__(None, None, None)


async def test_a_throttle_cuts_below_the_load_it_was_sent_at() -> None:
    """A 429 for a request sent as the 7th in flight caps the limit at 6 at once, whatever the ceiling."""
    limiter = AdaptiveLimiter(32, clock=FakeClock())
    release = asyncio.Event()

    async def hold() -> None:
        async with limiter.slot():
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(6)]
    await asyncio.sleep(0)
    async with limiter.slot():  # its own task's 7th request in flight
        limiter.throttled(1.0)
    release.set()
    await asyncio.gather(*holders)
    assert (limiter.limit, limiter.decreases) == (6, 1)


async def test_a_bare_throttle_pauses_everyone_for_a_jittered_growing_backoff() -> None:
    """Without Retry-After each new overload pauses the identity for a random time under a bound that
    doubles, and a success sent after the cut resets it."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(32, clock=clock)
    bounds = []
    for _ in range(4):
        clock.now += 100  # each a new overload
        before = clock.now
        limiter.throttled(None)
        bounds.append(limiter.paused_until - before)
    assert all(0 <= pause <= 0.05 * 2**i for i, pause in enumerate(bounds))
    clock.now += 100
    async with limiter.slot():
        limiter.succeeded(0.01)
    clock.now += 100
    before = clock.now
    limiter.throttled(0.0)  # Retry-After: 0 is treated like no Retry-After at all
    assert 0 <= limiter.paused_until - before <= 0.05


async def test_after_a_cut_the_limit_does_not_probe_the_cap_again_for_a_while() -> None:
    """Successes at full use do not grow a just-cut limit back to the level that drew the 429 until
    twenty times the pause it cost has passed; then it probes again."""
    clock = FakeClock()
    limiter = AdaptiveLimiter(10, initial=7, clock=clock)
    contexts = [limiter.slot() for _ in range(7)]
    for context in contexts:
        await context.__aenter__()
    limiter.throttled(1.0)  # sent as the 7th: the cap is 6
    for context in contexts:
        await context.__aexit__(None, None, None)
    assert limiter.limit == 6
    clock.now += 1.5  # the pause is over
    held = [limiter.slot() for _ in range(6)]
    for context in held:
        await context.__aenter__()
    for _ in range(30):
        limiter.succeeded(0.1)
    assert limiter.limit == 6
    clock.now += 20.0
    for _ in range(7):  # one window of successes at the new limit (and a float's worth more)
        limiter.succeeded(0.1)
    assert limiter.limit == 7
    for context in held:
        await context.__aexit__(None, None, None)
