"""The AIMD control law: how a concurrency limit reacts to successes and throttles (pure, no I/O).

TCP-style, as Netflix's concurrency-limits recommends for a client: slow start (+1 per success) until
the first throttle, then congestion avoidance (+1 per window of ``limit`` successes), and a
multiplicative cut on a throttle. Near the level where the last throttle happened, each further
probe takes twice as many windows as the one before (up to ``max_probe_windows``), so a client
that has found the provider's limit stops knocking on it every round trip: every knock costs a
Retry-After pause for the whole identity.
"""

from __future__ import annotations

from dataclasses import dataclass

LATENCY_TOLERANCE = 1.5  # a success slower than this × the smoothed latency is no evidence of headroom
SMOOTHING = 0.2  # weight of a new latency sample in the exponential moving average


@dataclass
class CongestionWindow:
    """Mutable limit state owned by one limiter; every method is O(1) and clock-free."""

    ceiling: int
    floor: int
    limit: int
    decrease: float
    slow_start: bool
    max_probe_windows: int = 16
    smoothed_latency: float | None = None
    credit: float = 0.0
    drop_limit: int | None = None
    probe_windows: int = 1

    def on_success(self, latency: float, in_use: int, *, may_grow: bool = True) -> bool:
        """Record a success; return True when the limit grew (never when ``may_grow`` is false)."""
        holds = self.smoothed_latency is None or latency <= LATENCY_TOLERANCE * self.smoothed_latency
        self._observe(latency)
        # Growing a limit the caller does not use proves nothing (Netflix's inflight*2 >= limit guard).
        if not may_grow or not holds or in_use * 2 < self.limit or self.limit >= self.ceiling:
            return False
        if self.slow_start:
            self.limit += 1
            return True
        self.credit += 1.0 / (self.limit * self._windows_per_step())
        if self.credit < 1.0:
            return False
        self.credit = 0.0
        self.limit += 1
        return True

    def on_drop(self) -> None:
        """Cut the limit once for one overload (the caller deduplicates a burst of throttles)."""
        before = self.limit
        if self.drop_limit is not None and before == self.drop_limit:
            self.probe_windows = min(self.probe_windows * 2, self.max_probe_windows)
        elif self.drop_limit is None or before > self.drop_limit:
            self.probe_windows = 1  # a new, higher level: the provider's capacity changed
        self.drop_limit = before
        self.slow_start = False
        self.credit = 0.0
        self.limit = max(self.floor, min(before - 1, int(before * self.decrease)))

    def cap(self, limit: int, refused_at: int | None = None) -> None:
        """Lower the limit to at most ``limit`` (evidence of what the provider serves), never below floor;
        ``refused_at`` is the load the provider refused: the level not to probe eagerly again."""
        if limit < self.limit:
            self.limit = max(self.floor, limit)
            self.credit = 0.0
            self.slow_start = False
        refused = limit + 1 if refused_at is None else max(limit + 1, refused_at)
        self.drop_limit = refused if self.drop_limit is None else min(self.drop_limit, refused)

    def near_drop(self) -> bool:
        """Whether one more step reaches the level at which the last throttle happened."""
        return self.drop_limit is not None and self.limit + 1 >= self.drop_limit

    def _windows_per_step(self) -> int:
        return self.probe_windows if self.near_drop() else 1

    def _observe(self, latency: float) -> None:
        if self.smoothed_latency is None:
            self.smoothed_latency = latency
        else:
            self.smoothed_latency += SMOOTHING * (latency - self.smoothed_latency)
