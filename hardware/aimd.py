"""An adaptive concurrency limiter for one upstream identity (an LLM endpoint, an ADO organisation).

A request enters ``slot()`` and waits, in FIFO order, until the shared pause deadline has passed and
fewer than ``limit`` requests are in flight; then, when a rate is set, it takes a token from an
``aiolimiter.AsyncLimiter`` (``AsyncLimiter(1, 1/rate)``: no start-up burst). The limit follows
:class:`~hardware.congestion.CongestionWindow` (AIMD) driven by ``succeeded``/``throttled``.

Throttling is pacing, never failure. A throttle with a ``Retry-After`` pauses the whole identity
until then; one without (or ``Retry-After: 0``) pauses it for an exponential backoff with full
jitter, shared by every caller. The first throttle of each overload cuts the limit, at once down to
what the provider was serving of ours when it refused: midway between the requests sent before the
refused one still unanswered when it was sent (an upper bound: some were being answered) and when its
429 came back (a lower bound). A hidden concurrency cap is so found in one step, not in a dozen 10%
cuts. After a cut the limit does not probe upwards again before ``PROBE_COST`` times the pause it cost
has passed, so probing a cap costs at most ~1/PROBE_COST of the time, whether the provider answers
``Retry-After: 1``, ``0`` or nothing.

Waiting is event-driven: one dispatcher grants slots when a slot is released, the limit grows, or the
single timer for the pause's end fires. Nobody polls.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import random
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from aiolimiter import AsyncLimiter

from hardware.congestion import CongestionWindow

# (id(limiter), grant sequence) pairs of the slots the current task holds: lets ``throttled`` tell a
# throttle caused by a request sent before the last cut (already accounted for) from a new one, and
# count the requests sent before it that the provider is still serving.
_HELD: contextvars.ContextVar[tuple[tuple[int, int], ...]] = contextvars.ContextVar("aimd_held", default=())
PROBE_COST = 20.0  # after a cut, wait this many times the pause it cost before probing above it again
BACKOFF_BASE = 0.05  # seconds: the first backoff of a throttle without Retry-After (or the latency)
BACKOFF_CAP = 30.0
SLOW_START_INITIAL = 4  # where a limiter for an unknown provider starts (slow start doubles it per RTT)


class AdaptiveLimiter:
    """AIMD concurrency limit + shared pause + optional request pacing; satisfies outbox's ``RateGate``."""

    def __init__(
        self,
        ceiling: int,
        *,
        initial: int | None = None,
        floor: int = 1,
        rate_per_second: float | None = None,
        decrease: float = 0.9,
        clock: Callable[[], float] = time.monotonic,
        name: str = "",
        rng: random.Random | None = None,
    ) -> None:
        start = ceiling if initial is None else initial
        if not 1 <= floor <= start <= ceiling:
            raise ValueError(f"need 1 <= floor <= initial <= ceiling, got {floor}, {start}, {ceiling}")
        if not 0.5 <= decrease < 1.0:
            raise ValueError(f"decrease must be in [0.5, 1.0), got {decrease}")
        if rate_per_second is not None and not (rate_per_second > 0 and math.isfinite(rate_per_second)):
            raise ValueError(f"rate_per_second must be a positive number, got {rate_per_second}")
        self.name = name
        self.rate_per_second = rate_per_second
        self._bucket = None if rate_per_second is None else AsyncLimiter(1, 1.0 / rate_per_second)
        self._clock = clock
        self._rng = rng or random.Random()
        self._window = CongestionWindow(
            ceiling=ceiling, floor=floor, limit=start, decrease=decrease, slow_start=start < ceiling
        )
        self._in_use = 0
        self._paused_until = -math.inf
        self._waiters: deque[asyncio.Future[int]] = deque()
        # grant sequence of each request past every wait (until released) -> how many were in flight then
        self._sending: dict[int, int] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._grants = 0
        self._cut_after_grant = 0  # grants numbered <= this were sent before the last cut
        self._cut_blocked_until = -math.inf  # fallback dedup window for throttles outside a slot
        self._backoff_level = 0  # consecutive overloads without a success sent after the last cut
        self._hold_until = -math.inf  # no growth near the last cut's level before this
        self.throttles = 0
        self.decreases = 0
        self.successes = 0

    # -- the RateGate protocol -------------------------------------------------------------------

    def slot(self) -> AbstractAsyncContextManager[None]:
        """Wait for a slot (pause over, ``in_use < limit``, a token) and hold it for one request."""
        return self._slot()

    def pause(self, seconds: float) -> None:
        """No slot is granted to anyone before ``now + seconds``; a pause only ever extends."""
        if seconds > 0:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def throttled(self, retry_after: float | None) -> None:
        """A 429/503: cut the limit once per overload and pause the whole identity for ``retry_after``
        (absent or 0: an exponential backoff with full jitter). Call inside the slot when possible."""
        self.throttles += 1
        held = [seq for owner, seq in _HELD.get() if owner == id(self)]
        new = self._counts_as_new_overload(held)
        if new:
            self._window.on_drop()
            self.decreases += 1
            self._cut_after_grant = self._grants
            window = max(self._window.smoothed_latency or 0.0, retry_after or 0.0)
            self._cut_blocked_until = self._clock() + window
        if held:  # the provider refused while serving the requests sent before this one: its capacity
            first = min(held)
            now_serving = sum(1 for seq in self._sending if seq < first)
            sent_with = self._sending.get(first, now_serving)
            served = (sent_with + now_serving + 1) // 2
            if served:
                self._window.cap(served, refused_at=sent_with + 1)
        if retry_after:
            pause = retry_after
        elif new:
            base = max(BACKOFF_BASE, self._window.smoothed_latency or 0.0)
            pause = self._rng.uniform(0.0, min(BACKOFF_CAP, base * 2**self._backoff_level))
            self._backoff_level += 1
        else:
            pause = 0.0
        self.pause(pause)
        if new:
            cost = max(pause, retry_after or 0.0, self._window.smoothed_latency or BACKOFF_BASE)
            self._hold_until = self._clock() + PROBE_COST * cost

    def succeeded(self, latency: float) -> None:
        """Grow the limit by one step when the limit is in use and latency holds; call inside the slot."""
        self.successes += 1
        held = [seq for owner, seq in _HELD.get() if owner == id(self)]
        if held and max(held) > self._cut_after_grant:
            self._backoff_level = 0  # a request sent at the new limit went through
        may_grow = self._clock() >= self._hold_until or not self._window.near_drop()
        if self._window.on_success(latency, self._in_use, may_grow=may_grow):
            self._dispatch()

    # -- state -----------------------------------------------------------------------------------

    @property
    def limit(self) -> int:
        return self._window.limit

    @property
    def ceiling(self) -> int:
        return self._window.ceiling

    @property
    def in_use(self) -> int:
        return self._in_use

    @property
    def paused_until(self) -> float:
        return self._paused_until

    @property
    def waiting(self) -> int:
        return sum(1 for waiter in self._waiters if not waiter.done())

    def snapshot(self) -> dict[str, float | int | str]:
        """Numbers for /metrics, logs and the hardware report."""
        return {
            "name": self.name,
            "limit": self.limit,
            "ceiling": self.ceiling,
            "floor": self._window.floor,
            "in_use": self._in_use,
            "waiting": self.waiting,
            "pause_remaining": max(0.0, self._paused_until - self._clock()),
            "rate_per_second": self.rate_per_second or 0.0,
            "smoothed_latency": self._window.smoothed_latency or 0.0,
            "throttles": self.throttles,
            "decreases": self.decreases,
            "successes": self.successes,
        }

    # -- machinery -------------------------------------------------------------------------------

    def _counts_as_new_overload(self, held: list[int]) -> bool:
        if held:  # precise: only a request granted after the last cut says the new limit is too high
            return max(held) > self._cut_after_grant
        return self._clock() >= self._cut_blocked_until

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        seq = await self._acquire()
        try:
            while self._bucket is not None:
                await self._bucket.acquire()
                if self._clock() >= self._paused_until:
                    break
                # paused while waiting for the token: queue again (the token is spent: conservative)
                self._in_use -= 1
                seq = await self._acquire()
        except BaseException:
            self._in_use -= 1
            self._dispatch()
            raise
        token = _HELD.set((*_HELD.get(), (id(self), seq)))
        self._sending[seq] = len(self._sending)
        try:
            yield
        finally:
            self._sending.pop(seq, None)
            _HELD.reset(token)
            self._in_use -= 1
            self._dispatch()

    async def _acquire(self) -> int:
        loop = asyncio.get_running_loop()
        at_front = False
        while True:
            waiter: asyncio.Future[int] = loop.create_future()
            if at_front:
                self._waiters.appendleft(waiter)
            else:
                self._waiters.append(waiter)
            self._dispatch()
            try:
                seq = await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():  # granted, then cancelled before resuming
                    self._in_use -= 1
                self._dispatch()
                raise
            if self._clock() >= self._paused_until:
                return seq
            # A pause was announced between the grant and this task resuming: give the slot back and
            # wait again at the head of the queue (the spent token is not refunded: conservative).
            self._in_use -= 1
            at_front = True

    def _dispatch(self) -> None:
        """Grant slots to the head of the queue while everything allows it; else arm the timer."""
        while self._waiters:
            head = self._waiters[0]
            if head.done():  # cancelled while queued
                self._waiters.popleft()
                continue
            if self._in_use >= self._window.limit:
                return  # a release or a growing limit dispatches again
            now = self._clock()
            if self._paused_until > now:
                self._arm(self._paused_until, now)
                return
            self._waiters.popleft()
            self._in_use += 1
            self._grants += 1
            head.set_result(self._grants)

    def _arm(self, deadline: float, now: float) -> None:
        if self._timer is not None:
            if self._timer_at <= deadline:
                return  # an earlier wake-up is already due; it re-arms if needed
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = asyncio.get_running_loop().call_later(deadline - now, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        self._timer_at = math.inf
        self._dispatch()
