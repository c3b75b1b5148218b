"""The service's Prometheus instruments, in a registry of their own (never the global one).

Counters are fed from two places that already see everything: the provider (every LLM request,
wrapped by ``MeteredProvider``) and the broadcaster (every committed event, ``MeteredBroadcaster``).
Levels that exist anyway (job states, adaptive limits, SSE clients) are read at scrape time by the
web layer. Label sets are small and fixed: no job or item ids.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram

from outbox.records import EventRow
from service.broadcaster import Broadcaster
from stages.errors import ProviderPermanent, ProviderThrottled, ProviderTransient
from stages.providers.base import Completion, CompletionRequest, Provider
from vocab import ItemState, JobStatus

LLM_OUTCOMES = ("ok", "truncated", "throttled", "transient_error", "permanent_error", "error")
UPLOAD_OUTCOMES = (
    ItemState.UPLOADED,
    ItemState.RETRY_WAIT,
    ItemState.DEAD,
    ItemState.BLOCKED,
    ItemState.PENDING,
    ItemState.CONFLICT,
)
JOB_ENDINGS = (
    JobStatus.COMPLETED,
    JobStatus.COMPLETED_WITH_ERRORS,
    JobStatus.FAILED,
    JobStatus.CANCELLED,
    JobStatus.AWAITING_UPLOAD,
    JobStatus.AWAITING_REVIEW,
    JobStatus.NEEDS_CREDENTIALS,
)
# LLM calls take from ~50 ms (a local model's short answer) to minutes (a long completion).
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.llm_requests = Counter(
            "backlogd_llm_requests",
            "LLM requests by outcome (each attempt counts once)",
            ["outcome"],
            registry=self.registry,
        )
        self.llm_latency = Histogram(
            "backlogd_llm_request_duration_seconds",
            "Time from sending an LLM request to its answer or error",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.llm_tokens = Counter(
            "backlogd_llm_tokens", "Tokens the LLM reported", ["kind"], registry=self.registry
        )
        self.uploads = Counter(
            "backlogd_uploads",
            "Upload state changes of outbox items (uploaded, retry_wait, dead, blocked; pending = re-queued)",
            ["outcome"],
            registry=self.registry,
        )
        self.jobs_finished = Counter(
            "backlogd_jobs_finished",
            "Jobs that reached an end (or a waiting) state, by that state",
            ["status"],
            registry=self.registry,
        )
        for outcome in LLM_OUTCOMES:
            self.llm_requests.labels(outcome)
        for kind in ("prompt", "completion"):
            self.llm_tokens.labels(kind)
        for outcome in UPLOAD_OUTCOMES:
            self.uploads.labels(outcome)
        for status in JOB_ENDINGS:
            self.jobs_finished.labels(status)

    def observe(self, events: Iterable[EventRow]) -> None:
        """Count what committed events report: upload outcomes and job endings."""
        for ev in events:
            if ev.type == "upload":
                state = str(ev.payload.get("state", ""))
                if state in UPLOAD_OUTCOMES:
                    self.uploads.labels(state).inc()
            elif ev.type in ("final", "stage"):
                status = str(ev.payload.get("status", ""))
                if status in JOB_ENDINGS and "stage" not in ev.payload:
                    self.jobs_finished.labels(status).inc()

    def llm_request(self, outcome: str, seconds: float | None, completion: Completion | None = None) -> None:
        self.llm_requests.labels(outcome).inc()
        if seconds is not None:
            self.llm_latency.observe(seconds)
        if completion is not None:
            self.llm_tokens.labels("prompt").inc(completion.prompt_tokens)
            self.llm_tokens.labels("completion").inc(completion.completion_tokens)


def llm_outcome(exc: BaseException) -> str:
    if isinstance(exc, ProviderThrottled):
        return "throttled"
    if isinstance(exc, ProviderTransient):
        return "transient_error"
    if isinstance(exc, ProviderPermanent):
        return "permanent_error"
    return "error"


class MeteredProvider:
    """A provider that reports every request to ``Metrics``; otherwise the provider it wraps."""

    def __init__(
        self, inner: Provider, metrics: Metrics, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.inner = inner
        self.name = inner.name
        self._metrics = metrics
        self._clock = clock

    async def complete(self, request: CompletionRequest) -> Completion:
        started = self._clock()
        try:
            completion = await self.inner.complete(request)
        except asyncio.CancelledError:
            raise  # abandoned (shutdown, cancel): neither an outcome nor a latency
        except Exception as exc:
            self._metrics.llm_request(llm_outcome(exc), self._clock() - started)
            raise
        outcome = "truncated" if completion.finish_reason == "length" else "ok"
        self._metrics.llm_request(outcome, self._clock() - started, completion)
        return completion

    async def aclose(self) -> None:
        await self.inner.aclose()


class MeteredBroadcaster(Broadcaster):
    """The broadcaster every committed event passes through, counting them on the way."""

    def __init__(self, metrics: Metrics, queue_size: int = 256) -> None:
        super().__init__(queue_size)
        self.metrics = metrics

    def publish(self, events: Iterable[EventRow]) -> None:
        batch = list(events)
        self.metrics.observe(batch)
        super().publish(batch)
