"""A plain rate gate for tests that drive the ADO client without the service's adaptive limiter: a
semaphore plus one shared "not before" deadline (it speaks ``outbox.ado.gate.RateGate``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager


class SimpleGate:
    """A semaphore of ``concurrency`` slots and a shared pause deadline on an injected monotonic clock."""

    def __init__(self, concurrency: int, clock: Callable[[], float] = time.monotonic) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._semaphore = asyncio.Semaphore(concurrency)
        self._clock = clock
        self._deadline = 0.0
        self.pauses = 0
        self.throttles = 0
        self.successes = 0

    @property
    def deadline(self) -> float:
        return self._deadline

    def pause(self, seconds: float) -> None:
        if seconds > 0:
            self.pauses += 1
            self._deadline = max(self._deadline, self._clock() + seconds)

    def throttled(self, retry_after: float | None) -> None:
        self.throttles += 1
        if retry_after is not None:
            self.pause(retry_after)

    def succeeded(self, latency: float) -> None:
        self.successes += 1

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        async with self._semaphore:
            # A deadline, not an event: re-check after every sleep, another response may have extended it.
            while (wait := self._deadline - self._clock()) > 0:  # noqa: ASYNC110
                await asyncio.sleep(wait)
            yield

    def slot(self) -> AbstractAsyncContextManager[None]:
        return self._slot()
