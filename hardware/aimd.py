"""An adaptive concurrency limiter for one upstream identity (an LLM endpoint, an ADO organisation).

A request enters ``slot()`` and waits, in FIFO order, until three things hold at once:
the shared pause deadline has passed, fewer than ``limit`` requests are in flight, and the pacer has a
token. The limit follows :class:`~hardware.congestion.CongestionWindow` (AIMD) driven by
``succeeded``/``throttled``.

Waiting is event-driven: one dispatcher grants slots when a slot is released, the limit grows, or the
single timer for the next known deadline (pause end or next token) fires. Nobody polls.

The pacer is our own zero-burst spacing (one token every ``1/rate`` seconds, the first at once)
rather than ``aiolimiter.AsyncLimiter``: aiolimiter starts empty and lets ``max_rate`` requests
through at once, fixes its rate at construction, and has its own waiter queue, which could not be
ordered together with the pause and the concurrency limit in one FIFO.
"""

from __future__ import annotations

import asyncio
import contextvars
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from hardware.congestion import CongestionWindow

# (id(limiter), grant sequence) pairs of the slots the current task holds: lets ``throttled`` tell a
# throttle caused by a request sent before the last cut (already accounted for) from a new one.
_HELD: contextvars.ContextVar[tuple[tuple[int, int], ...]] = contextvars.ContextVar("aimd_held", default=())


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
        self._interval = 0.0 if rate_per_second is None else 1.0 / rate_per_second
        self._clock = clock
        self._window = CongestionWindow(
            ceiling=ceiling, floor=floor, limit=start, decrease=decrease, slow_start=start < ceiling
        )
        self._in_use = 0
        self._paused_until = -math.inf
        self._next_token_at = -math.inf
        self._waiters: deque[asyncio.Future[int]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._grants = 0
        self._cut_after_grant = 0  # grants numbered <= this were sent before the last cut
        self._cut_blocked_until = -math.inf  # fallback dedup window for throttles outside a slot
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
        """Cut the limit once per overload and pause the whole identity for ``retry_after``."""
        self.throttles += 1
        if self._counts_as_new_overload(retry_after):
            self._window.on_drop()
            self.decreases += 1
            self._cut_after_grant = self._grants
            window = max(self._window.smoothed_latency or 0.0, retry_after or 0.0)
            self._cut_blocked_until = self._clock() + window
        if retry_after is not None:
            self.pause(retry_after)

    def succeeded(self, latency: float) -> None:
        """Grow the limit by one step when the limit is in use and latency holds; call inside the slot."""
        self.successes += 1
        if self._window.on_success(latency, self._in_use):
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

    def _counts_as_new_overload(self, retry_after: float | None) -> bool:
        held = [seq for owner, seq in _HELD.get() if owner == id(self)]
        if held:  # precise: only a request granted after the last cut says the new limit is too high
            return max(held) > self._cut_after_grant
        return self._clock() >= self._cut_blocked_until

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        seq = await self._acquire()
        token = _HELD.set((*_HELD.get(), (id(self), seq)))
        try:
            yield
        finally:
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
            ready_at = max(self._paused_until, self._next_token_at)
            if ready_at > now:
                self._arm(ready_at, now)
                return
            self._waiters.popleft()
            self._in_use += 1
            self._grants += 1
            self._next_token_at = max(self._next_token_at, now) + self._interval
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
