"""Webhook notifications: a Slack or Teams incoming webhook hears when a job awaits review, finishes
or fails, as ``{"text": "..."}`` (both accept that shape).

The job only enqueues (``notify`` never awaits); one background task delivers, retrying 429, 5xx,
timeouts and connection errors with exponential backoff (a Retry-After wins, capped), a bounded number
of times. A full queue drops the newest notification with a log line: a slow or dead webhook never
holds a job up. The URL carries a token, so only its host is ever logged.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
import structlog

from outbox.ado.http import parse_seconds
from outbox.backend import StoreBackend
from service.settings import NotificationSettings
from vocab import FAILED_ITEM_STATES, ItemState, JobStatus

log = structlog.get_logger("backlogd.notify")

# The moments a person has something to do or to know: their turn to review, or the job is over.
NOTIFIED_STATES: frozenset[JobStatus] = frozenset(
    {
        JobStatus.AWAITING_REVIEW,
        JobStatus.AWAITING_UPLOAD,
        JobStatus.COMPLETED,
        JobStatus.COMPLETED_WITH_ERRORS,
        JobStatus.FAILED,
    }
)
_WORDS = {
    JobStatus.AWAITING_REVIEW: "is ready for review",
    JobStatus.AWAITING_UPLOAD: "is generated and waits for its upload",
    JobStatus.COMPLETED: "has completed",
    JobStatus.COMPLETED_WITH_ERRORS: "has completed with errors",
    JobStatus.FAILED: "has failed",
}


@dataclass(frozen=True)
class Notice:
    job_id: str
    status: JobStatus


class Notifier:
    """Owns the delivery task. Use ``async with Notifier(...)``; ``notify`` from anywhere on the loop."""

    def __init__(
        self,
        settings: NotificationSettings,
        *,
        store: StoreBackend,
        session: aiohttp.ClientSession,
        page_url: str,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        secret = settings.webhook_url
        self._url = secret.get_secret_value() if secret is not None else None
        self.host = urlsplit(self._url).hostname if self._url else None
        self._settings = settings
        self._store = store
        self._session = session
        self._page_url = page_url.rstrip("/")
        self._sleep = sleep
        self._queue: asyncio.Queue[Notice] = asyncio.Queue(settings.queue_size)
        self._task: asyncio.Task[None] | None = None
        self.delivered = 0
        self.abandoned = 0

    @property
    def enabled(self) -> bool:
        return self._url is not None

    async def __aenter__(self) -> Notifier:
        if self.enabled:
            self._task = asyncio.create_task(self._deliver_all(), name="notifier")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def notify(self, job_id: str, status: JobStatus) -> None:
        """Queue a notice for the job's new status (ignored for states nobody is told about)."""
        if not self.enabled or status not in NOTIFIED_STATES:
            return
        try:
            self._queue.put_nowait(Notice(job_id, status))
        except asyncio.QueueFull:
            log.warning("notification_dropped", job_id=job_id, status=status, webhook_host=self.host)

    async def idle(self) -> None:
        """Until every queued notice was delivered or given up (tests, a graceful shutdown)."""
        await self._queue.join()

    async def close(self, grace: float = 2.0) -> None:
        """Give queued notices ``grace`` seconds, then stop the delivery task."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.idle(), grace)
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    async def _deliver_all(self) -> None:
        while True:
            notice = await self._queue.get()
            try:
                await self._deliver(notice)
            except Exception:  # a bug here must not end the delivery task
                log.exception("notification_failed", job_id=notice.job_id, webhook_host=self.host)
            finally:
                self._queue.task_done()

    async def _deliver(self, notice: Notice) -> None:
        payload = {"text": await self._text(notice)}
        attempts = self._settings.max_attempts
        for attempt in range(1, attempts + 1):
            outcome, retry_after = await self._post(payload)
            if outcome == "delivered":
                self.delivered += 1
                log.info("notification_sent", job_id=notice.job_id, status=notice.status, attempt=attempt)
                return
            if outcome == "refused" or attempt == attempts:
                break
            await self._sleep(self._delay(attempt, retry_after))
        self.abandoned += 1
        log.warning(
            "notification_abandoned",
            job_id=notice.job_id,
            status=notice.status,
            webhook_host=self.host,
            attempts=attempt,
            last=outcome,
        )

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        base = self._settings.retry_base_seconds * 2 ** (attempt - 1)
        wait = retry_after if retry_after is not None else base
        return min(wait, self._settings.retry_max_seconds)

    async def _post(self, payload: dict[str, Any]) -> tuple[str, float | None]:
        """One attempt: ``delivered``, ``retry`` (with a Retry-After, if any) or ``refused`` (4xx)."""
        assert self._url is not None
        timeout = aiohttp.ClientTimeout(total=self._settings.timeout_seconds)
        try:
            async with self._session.post(
                self._url, json=payload, timeout=timeout, allow_redirects=False
            ) as resp:
                await resp.read()
                if resp.status < 300:
                    return "delivered", None
                retry_after = parse_seconds(resp.headers.get("Retry-After"))
                retryable = resp.status in (408, 425, 429) or resp.status >= 500
                log.info("notification_rejected", status=resp.status, webhook_host=self.host)
                return ("retry" if retryable else "refused"), retry_after
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.info("notification_unreachable", error=type(exc).__name__, webhook_host=self.host)
            return "retry", None

    async def _text(self, notice: Notice) -> str:
        job = await self._store.get_job(notice.job_id)
        counts = await self._store.item_counts(notice.job_id)
        title = (job.vision.title if job else None) or notice.job_id
        return message(str(title), notice.status, counts, f"{self._page_url}/#/jobs/{notice.job_id}")


def message(title: str, status: JobStatus, counts: dict[str, dict[str, int]], link: str) -> str:
    """One line a person reads in a chat: the job, what happened, what it holds, where to look."""
    total = sum(sum(states.values()) for states in counts.values())
    uploaded = sum(states.get(ItemState.UPLOADED, 0) for states in counts.values())
    failed = sum(states.get(s, 0) for states in counts.values() for s in FAILED_ITEM_STATES)
    kinds = ", ".join(f"{sum(states.values())} {kind}" for kind, states in sorted(counts.items()))
    tally = f"{total} items ({kinds}); {uploaded} uploaded" + (f", {failed} failed" if failed else "")
    return f"backlogd: job \u201c{title}\u201d {_WORDS.get(status, status)} \u2014 {tally}. {link}"
