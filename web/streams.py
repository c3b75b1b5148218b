"""The open SSE streams, so shutdown can tell each one to send a final ``shutdown`` event and end."""

from __future__ import annotations

from service.broadcaster import Subscription


class LiveStream:
    """One connected client: its subscription, and why it must stop (None while it may go on)."""

    def __init__(self, job_id: str, subscription: Subscription) -> None:
        self.job_id = job_id
        self.subscription = subscription
        self.stop_reason: str | None = None

    def stop(self, reason: str) -> None:
        """Wake the handler waiting on the subscription; it ends after what is queued."""
        if self.stop_reason is None:
            self.stop_reason = reason
        self.subscription.dropped = True  # get() answers None once the queue is empty
        self.subscription.close()


class StreamRegistry:
    def __init__(self) -> None:
        self._streams: set[LiveStream] = set()

    def add(self, stream: LiveStream) -> None:
        self._streams.add(stream)

    def discard(self, stream: LiveStream) -> None:
        self._streams.discard(stream)

    def __len__(self) -> int:
        return len(self._streams)

    def stop_all(self, reason: str) -> None:
        for stream in list(self._streams):
            stream.stop(reason)
