"""A job's progress: counts per item type, the current action and agent, a monotonic percentage and
an ETA. Pure bookkeeping (the clock is passed in); the runner and the relay feed it, and every
``progress`` event carries its snapshot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vocab import KINDS, ItemKind, JobStatus
from vocab.options import JobOptions, Limits

STAGE_OF = {kind: info.stage for kind, info in KINDS.items()}  # the stage that generates it
COUNTED_KINDS: tuple[str, ...] = tuple(ItemKind)  # every kind is counted, in the table's order


# What a job shows as its current action when nothing more specific is going on.
_ACTIONS = {
    JobStatus.QUEUED: "Queued",
    JobStatus.RUNNING: "Working",
    JobStatus.AWAITING_UPLOAD: "Waiting for a manual upload",
    JobStatus.AWAITING_REVIEW: "Waiting for review",
    JobStatus.NEEDS_CREDENTIALS: "Waiting for Azure DevOps credentials",
}


def action_of(status: JobStatus) -> str:
    """The action a job in ``status`` shows by default ("Finished" once it has ended)."""
    return _ACTIONS.get(status, "Finished")


@dataclass
class Progress:
    job_id: str
    limits: Limits
    include_qa: bool
    uploading: bool
    started_at: float
    status: JobStatus = JobStatus.QUEUED
    calls_done: int = 0
    calls_failed: int = 0
    calls_pending: int = 0
    generated: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED_KINDS, 0))
    uploaded: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED_KINDS, 0))
    failed: dict[str, int] = field(default_factory=lambda: dict.fromkeys(COUNTED_KINDS, 0))
    unexpanded: dict[str, int] = field(default_factory=dict)  # pending calls by stage
    current_action: str = "Queued"
    current_agent: str = ""
    percent: float = 0.0

    @classmethod
    def starting(cls, job_id: str, options: JobOptions, started_at: float) -> Progress:
        """A job's progress from its options, counting from ``started_at`` (monotonic)."""
        return cls(
            job_id=job_id,
            limits=options.limits,
            include_qa=options.include_qa,
            uploading=options.uploading,
            started_at=started_at,
        )

    def _future_calls(self) -> float:
        """Calls not yet known, estimated from the limits below each pending call."""
        lim = self.limits
        per_story = 2 if self.include_qa else 1
        per_feature = 1 + lim.max_stories_per_feature * per_story
        per_epic = 1 + lim.max_features_per_epic * per_feature
        below = {
            STAGE_OF[ItemKind.EPIC]: lim.max_epics * per_epic,
            STAGE_OF[ItemKind.FEATURE]: lim.max_features_per_epic * per_feature,
            STAGE_OF[ItemKind.STORY]: lim.max_stories_per_feature * per_story,
        }
        return sum(n * below.get(stage, 0) for stage, n in self.unexpanded.items())

    def fraction(self) -> float:
        calls_total = self.calls_done + self.calls_failed + self.calls_pending + self._future_calls()
        done = float(self.calls_done + self.calls_failed)
        total = max(calls_total, 1.0)
        if self.uploading:
            items = sum(self.generated.values())
            future_items = self._future_calls() * 3  # each future call yields a few items
            done += sum(self.uploaded.values()) + sum(self.failed.values())
            total += items + future_items
        return min(1.0, done / total) if total else 0.0

    def update_percent(self, final: bool = False) -> float:
        value = 100.0 if final else min(99.0, round(self.fraction() * 100, 1))
        self.percent = max(self.percent, value)  # never moves backwards
        return self.percent

    def eta_seconds(self, now: float) -> float | None:
        if self.percent <= 0 or self.percent >= 100:
            return None if self.percent <= 0 else 0.0
        elapsed = max(0.0, now - self.started_at)
        return round(elapsed * (100 - self.percent) / self.percent, 1)

    def snapshot(self, now: float, timestamp: float) -> dict[str, Any]:
        counts = {
            kind: {
                "generated": self.generated[kind],
                "uploaded": self.uploaded[kind],
                "failed": self.failed[kind],
            }
            for kind in COUNTED_KINDS
        }
        return {
            "job_id": self.job_id,
            "progress": self.percent,
            "status": self.status,
            "current_action": self.current_action,
            "current_agent": self.current_agent,
            "counts": counts,
            "calls": {"done": self.calls_done, "failed": self.calls_failed, "pending": self.calls_pending},
            "eta_seconds": self.eta_seconds(now),
            "timestamp": timestamp,
        }
