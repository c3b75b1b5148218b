"""The rate gate every ADO request passes through: concurrency plus a pause shared by the whole identity.

The service passes a smarter (AIMD) limiter through the ``RateGate`` protocol; ``SimpleGate`` is the
plain fallback used in tests: a semaphore plus one shared "not before" deadline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol


class RateGate(Protocol):
    def slot(self) -> AbstractAsyncContextManager[None]:
        """Wait for a free request slot (and for any shared pause to end), hold it for one request."""
        ...

    def pause(self, seconds: float) -> None:
        """Stop every request of this identity for ``seconds`` from now (a pause only extends)."""
        ...

    def throttled(self, retry_after: float | None) -> None:
        """The service signalled throttling (429, Retry-After or a rate-limit delay)."""
        ...

    def succeeded(self, latency: float) -> None:
        """A request succeeded without a throttling signal after ``latency`` seconds."""
        ...


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
