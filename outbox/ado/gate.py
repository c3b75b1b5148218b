"""The rate gate every ADO request passes through: concurrency plus a pause shared by the whole identity.

The service passes its adaptive (AIMD) limiter through the ``RateGate`` protocol.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager
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
