"""The open SSE streams, so shutdown can tell each one to send a final ``shutdown`` event and end,
and so a stream whose client went away ends at once (its per-client slot with it), not at the next
heartbeat: one sweeper looks at every stream's connection every ``sweep_seconds``."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Callable

from outbox.records import EventRow
from service.broadcaster import Subscription

FrameEncoder = Callable[[EventRow], bytes]


class LiveStream:
    """One connected client: its subscription, and why it must stop (None while it may go on)."""

    def __init__(
        self, job_id: str, subscription: Subscription, gone: Callable[[], bool] = lambda: False
    ) -> None:
        self.job_id = job_id
        self.subscription = subscription
        self.gone = gone  # True once the client's connection is closed
        self.stop_reason: str | None = None

    def stop(self, reason: str) -> None:
        """Wake the handler waiting on the subscription; it ends after what is queued."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.subscription.dropped = True  # get() answers None once the queue is empty
        self.subscription.close()


class StreamRegistry:
    """Open streams, and the encoded frames of recent events: each event is serialised once and the
    same bytes are written to every client (a thousand clients cost one ``json.dumps``)."""

    def __init__(self, encode: FrameEncoder, cache_size: int = 4096, sweep_seconds: float = 0.05) -> None:
        self._streams: set[LiveStream] = set()
        self._encode = encode
        self._frames: OrderedDict[tuple[str, int], bytes] = OrderedDict()
        self._cache_size = cache_size
        self._sweep_seconds = sweep_seconds
        self._sweeper: asyncio.Task[None] | None = None

    def frame(self, ev: EventRow) -> bytes:
        key = (ev.job_id, ev.seq)
        data = self._frames.get(key)
        if data is None:
            data = self._frames[key] = self._encode(ev)
            if len(self._frames) > self._cache_size:
                self._frames.popitem(last=False)
        return data

    def add(self, stream: LiveStream) -> None:
        self._streams.add(stream)
        if self._sweeper is None or self._sweeper.done():
            self._sweeper = asyncio.get_running_loop().create_task(self._sweep(), name="sse-sweeper")

    async def _sweep(self) -> None:
        """Stop every stream whose client is gone; ends when no stream is left (``add`` restarts it)."""
        while self._streams:
            await asyncio.sleep(self._sweep_seconds)
            for stream in list(self._streams):
                if stream.stop_reason is None and stream.gone():
                    stream.stop("disconnected")

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper

    def discard(self, stream: LiveStream) -> None:
        self._streams.discard(stream)

    def __len__(self) -> int:
        return len(self._streams)

    def stop_all(self, reason: str) -> None:
        for stream in list(self._streams):
            stream.stop(reason)
