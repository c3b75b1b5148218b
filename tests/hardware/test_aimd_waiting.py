"""How AdaptiveLimiter makes requests wait: FIFO, shared pauses, pacing, and cancellation safety."""

from __future__ import annotations

import asyncio
import time

from hardware.aimd import AdaptiveLimiter


async def _hold(limiter: AdaptiveLimiter, entered: list[float], seconds: float = 0.0) -> None:
    async with limiter.slot():
        entered.append(time.monotonic())
        await asyncio.sleep(seconds)


async def test_concurrency_never_exceeds_the_limit_and_order_is_fifo() -> None:
    """At most ``limit`` holders at once, granted in arrival order."""
    limiter = AdaptiveLimiter(3)
    order: list[int] = []
    peak = 0

    async def one(index: int) -> None:
        nonlocal peak
        async with limiter.slot():
            order.append(index)
            peak = max(peak, limiter.in_use)
            await asyncio.sleep(0.002)

    async with asyncio.TaskGroup() as group:
        for index in range(12):
            group.create_task(one(index))
            await asyncio.sleep(0)
    assert (peak, order, limiter.in_use) == (3, list(range(12)), 0)


async def test_pause_holds_every_waiter_including_queued_ones() -> None:
    """After pause(), no slot is granted to anyone, already queued or new, before the deadline."""
    limiter = AdaptiveLimiter(2)
    entered: list[float] = []
    async with limiter.slot(), limiter.slot():
        queued = [asyncio.create_task(_hold(limiter, entered)) for _ in range(4)]
        await asyncio.sleep(0)
        limiter.pause(0.03)
        deadline = limiter.paused_until
    late = [asyncio.create_task(_hold(limiter, entered)) for _ in range(2)]
    await asyncio.gather(*queued, *late)
    assert len(entered) == 6
    assert min(entered) >= deadline


async def test_pause_between_grant_and_resume_is_still_honoured() -> None:
    """A waiter granted a slot just before a pause is announced still waits for the deadline."""
    limiter = AdaptiveLimiter(1)
    entered: list[float] = []
    holder = limiter.slot()
    await holder.__aenter__()
    waiter = asyncio.create_task(_hold(limiter, entered))
    await asyncio.sleep(0)
    await holder.__aexit__(None, None, None)  # grants the waiter synchronously...
    limiter.pause(0.02)  # ...and the pause arrives before it runs
    deadline = limiter.paused_until
    await waiter
    assert entered[0] >= deadline
    assert limiter.in_use == 0


async def test_cancelled_queued_waiter_leaks_no_slot() -> None:
    """Cancelling a waiter still in the queue leaves the limiter's count unchanged and passes the turn on."""
    limiter = AdaptiveLimiter(1)
    entered: list[float] = []
    async with limiter.slot():
        doomed = asyncio.create_task(_hold(limiter, entered))
        survivor = asyncio.create_task(_hold(limiter, entered))
        await asyncio.sleep(0)
        doomed.cancel()
        await asyncio.sleep(0)
    await survivor
    assert doomed.cancelled()
    assert (len(entered), limiter.in_use, limiter.waiting) == (1, 0, 0)


async def test_waiter_cancelled_after_its_grant_returns_the_slot() -> None:
    """A waiter cancelled between being granted and resuming gives its slot back."""
    limiter = AdaptiveLimiter(1)
    entered: list[float] = []
    holder = limiter.slot()
    await holder.__aenter__()
    doomed = asyncio.create_task(_hold(limiter, entered))
    await asyncio.sleep(0)
    await holder.__aexit__(None, None, None)  # grant is made, the task has not resumed yet
    assert limiter.in_use == 1
    doomed.cancel()
    await asyncio.gather(doomed, return_exceptions=True)
    assert (entered, limiter.in_use) == ([], 0)
    async with asyncio.timeout(1):
        await _hold(limiter, entered)
    assert len(entered) == 1


async def test_timeout_while_paused_leaks_nothing() -> None:
    """asyncio.timeout around a waiter stuck behind a long pause cancels it cleanly."""
    limiter = AdaptiveLimiter(4)
    limiter.pause(60)
    entered: list[float] = []
    for _ in range(3):
        try:
            async with asyncio.timeout(0.005):
                await _hold(limiter, entered)
        except TimeoutError:
            pass
    assert (entered, limiter.in_use, limiter.waiting) == ([], 0, 0)


async def test_pacer_does_not_burst_at_start() -> None:
    """With a rate of 50/s (aiolimiter's bucket) the first slot is immediate and the next ones are
    spaced 20 ms apart."""
    limiter = AdaptiveLimiter(50, rate_per_second=50)
    entered: list[float] = []
    start = time.monotonic()
    await asyncio.gather(*(_hold(limiter, entered) for _ in range(10)))
    offsets = sorted(at - start for at in entered)
    assert offsets[0] < 0.015  # well under one interval, whatever the scheduling noise of a busy machine
    # The k-th grant cannot come before k token intervals: no burst, whatever the scheduling noise.
    assert all(offset >= index * 0.02 - 1e-6 for index, offset in enumerate(offsets))


async def test_limiter_matches_the_rate_gate_protocol_shape() -> None:
    """slot/pause/throttled/succeeded have the RateGate shapes and the snapshot reports the state."""
    limiter = AdaptiveLimiter(3, name="ado")
    async with limiter.slot():
        limiter.succeeded(0.01)
        limiter.throttled(None)
    limiter.pause(0.0)
    snap = limiter.snapshot()
    assert (snap["name"], snap["limit"], snap["in_use"], snap["throttles"]) == ("ado", 2, 0, 1)
