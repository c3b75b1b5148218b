"""The job manager: creates jobs, runs each as generation (the runner) then upload (the relay),
keeps their progress, cancels and resumes them. It owns the job tasks and awaits them on close.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Any, Protocol

import structlog

from outbox import edits
from outbox.ado.preflight import CheckReport
from outbox.backend import StoreBackend
from outbox.errors import VisionTaken
from outbox.records import EventRow, JobRow, NewEvent
from service import rerun
from service.errors import BacklogExists, InvalidInput, JobNotFound, JobStateError, QueueFull
from service.items import JobContext
from service.notify import Notifier
from service.progress import Progress, action_of
from service.reports import JobReports, by_kind, llm_tally
from service.requests import JobRequest, resolve_options
from service.runner import GenerationRunner
from service.settings import Settings
from service.targets import check_job_target
from service.uploads import UploadCoordinator
from stages.vision import check_size, expanded_size, from_mapping, from_pasted
from vocab import (
    FAILED_ITEM_STATES,
    OPEN_JOB_STATES,
    TERMINAL_JOB_STATES,
    ItemKind,
    ItemState,
    JobStatus,
    UploadOutcome,
)
from vocab.options import JobOptions
from vocab.vision import Vision

log = structlog.get_logger("backlogd.jobs")
# Once generation has finished a job may upload (again): what it waited for, or what it left behind.
_UPLOADABLE = (
    JobStatus.AWAITING_UPLOAD,
    JobStatus.AWAITING_REVIEW,
    JobStatus.NEEDS_CREDENTIALS,
    JobStatus.COMPLETED_WITH_ERRORS,
    JobStatus.COMPLETED,
)


class JobLeases(Protocol):
    """Several instances on one database: a job runs where its lease is held (``service/cluster.py``)."""

    async def acquire(self, job_id: str) -> bool: ...
    async def release(self, job_id: str) -> None: ...
    def interrupted(self, exc: BaseException) -> bool: ...


class JobManager:
    def __init__(
        self,
        *,
        settings: Settings,
        store: StoreBackend,
        runner: GenerationRunner,
        publish: Callable[[list[EventRow]], None],
        pool: Executor | None,
        uploads: UploadCoordinator | None = None,
        metadata: Callable[[], dict[str, Any]] = dict,
        concurrent_jobs: int | None = None,
        leases: JobLeases | None = None,
        notifier: Notifier | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._uploads = uploads
        self._publish = publish  # the runner's too: uploads see committed events before the broadcaster
        self._runner = runner
        self._metadata = metadata
        self._pool = pool
        self._reports = JobReports(store, pool)
        self._tasks: dict[str, asyncio.Task[JobRow]] = {}
        self._progress: dict[str, Progress] = {}
        self._warnings: dict[str, list[str]] = {}  # job id → pre-flight warnings (QA switched off)
        self._max_jobs = concurrent_jobs or settings.server.max_concurrent_jobs
        self._slots = asyncio.Semaphore(self._max_jobs)
        self._leases = leases
        self._notifier = notifier

    # ----- creating and starting --------------------------------------------------------------

    async def submit(self, request: JobRequest, *, start: bool = True, refuse_copies: bool = False) -> str:
        """Validate, then admit: QueueFull when server.max_queued_jobs jobs already wait (checked in the
        insert's transaction), TargetRefused for an upload target the settings do not allow; with
        ``refuse_copies`` (the HTTP API) BacklogExists when an earlier job has this vision and target
        and the request says neither ``update_of`` nor ``new_copy``."""
        vision = parse_request_vision(request.vision)
        check_size(expanded_size(vision), "vision", self._settings.server.max_vision_bytes)
        check_job_target(request, self._settings.azure_devops)
        options = resolve_options(request, self._settings)
        key = rerun.vision_key(vision, options)
        guarded = refuse_copies and rerun.guards_copies(request)
        await rerun.admit(self._store, request, options, key if guarded else None)
        job_id = str(uuid.uuid4())
        try:
            events = await self._store.create_job(
                job_id,
                vision,
                options,
                self._metadata(),
                max_queued=self._settings.server.max_queued_jobs,
                vision_key=key,
                copy_guard=rerun.NO_BACKLOG if guarded else None,  # a concurrent twin loses here
            )
        except VisionTaken as exc:
            raise BacklogExists(exc.job_id) from None
        if events is None:
            raise QueueFull(self._settings.server.max_queued_jobs)
        if self._uploads is not None and request.azure_devops.pat is not None:
            self._uploads.remember_pat(job_id, request.azure_devops.pat.get_secret_value())
        self._publish(events)
        log.info("job_created", job_id=job_id, target=options.target, provider=options.provider)
        if start and self._leases is not None and self.free_slots() > 0:
            await self._leases.acquire(job_id)  # ours from the start: no other instance races for it
        if start:
            self.start(job_id)
        return job_id

    def start(self, job_id: str) -> asyncio.Task[JobRow]:
        task = self._tasks.get(job_id)
        if task is None or task.done():
            task = asyncio.create_task(self.run(job_id), name=f"job-{job_id}")
            self._track(job_id, task)
        return task

    def _track(self, job_id: str, task: asyncio.Task[JobRow]) -> None:
        """Keep the task while it runs (close() awaits it); it removes itself when done."""
        self._tasks[job_id] = task

        def done(finished: asyncio.Task[JobRow]) -> None:
            if self._tasks.get(job_id) is finished:
                del self._tasks[job_id]

        task.add_done_callback(done)

    async def resume_unfinished(self) -> list[str]:
        """Start every job a previous process left queued or running."""
        jobs = await self._store.jobs_in(OPEN_JOB_STATES)
        for job in jobs:
            log.info("job_resumed", job_id=job.id)
            self.start(job.id)
        await self._resume_updates({j.id for j in jobs})
        return [j.id for j in jobs]

    async def _resume_updates(self, running: set[str]) -> None:
        """A job that has finished but still has items to send (an edit's update, cut off by a crash):
        the relay takes it again; a job that runs does this itself."""
        if self._uploads is None:
            return
        for job_id in await edits.jobs_with_open_items(self._store):
            if job_id not in running:
                log.info("job_updates_resumed", job_id=job_id)
                self._uploads.follow(job_id)

    # ----- running ----------------------------------------------------------------------------

    async def run(self, job_id: str) -> JobRow:
        job = await self._job(job_id)
        if job.status in TERMINAL_JOB_STATES:
            return job
        async with self._slots:
            if self._leases is None:
                return await self._run_guarded(job)
            if not await self._leases.acquire(job_id):
                return job  # another instance runs it
            try:
                job = await self._job(job_id)  # it may have moved on while another instance held it
                return job if job.status in TERMINAL_JOB_STATES else await self._run_guarded(job)
            finally:
                await self._leases.release(job_id)

    async def _run_guarded(self, job: JobRow) -> JobRow:
        with structlog.contextvars.bound_contextvars(job_id=job.id):
            try:
                return await self._run(job)
            except Exception as exc:  # a bug must not leave the job "running" forever
                if self._leases is not None and self._leases.interrupted(exc):
                    log.warning("job_interrupted", error=str(exc)[:200])  # it resumes where a lease is held
                    return job
                log.exception("job_crashed")
                return await self._finish(job.id, JobStatus.FAILED, error=f"internal error: {exc}"[:500])

    async def _run(self, job: JobRow) -> JobRow:
        options, vision = job.options, job.vision
        report = await self._preflight(job.id, options)
        if report is not None and report.fatal:  # before any LLM call: no tokens spent on a dead target
            return await self._finish(
                job.id, JobStatus.FAILED, error=f"pre-flight check failed: {report.summary()}"
            )
        if report is not None and options.include_qa and not report.qa_available:
            options = options.model_copy(update={"include_qa": False})
            self._warnings[job.id] = report.warnings()
            log.warning("job_runs_without_qa", reasons=self._warnings[job.id])
        progress = self._progress_for(job, options)
        progress.status = JobStatus.RUNNING
        await self._set_status(job.id, JobStatus.RUNNING, stage="generation")
        ctx = JobContext(
            job_id=job.id,
            vision=vision,
            limits=options.limits,
            include_qa=options.include_qa,
            progress=progress,
            item_state=ItemState.HELD if options.holds_items else ItemState.PENDING,
        )
        if options.uploading and self._uploads is not None:
            self._uploads.begin(job.id, options, progress)
        try:
            await self._runner.run(ctx)
        except asyncio.CancelledError:
            log.info("job_generation_interrupted")
            raise
        log.info("job_generated", items=by_kind(ctx.items.values()), failed_calls=len(ctx.failed_calls))
        trace = await self._reports.traceability(job.id, vision)
        card = await self._reports.quality(job.id, vision, trace)
        await self._store.merge_metadata(
            job.id,
            {
                "traceability": trace,
                "failed_calls": ctx.failed_calls,
                "llm": llm_tally(job, ctx),
                "quality": card,
            },
        )
        if not ctx.items:
            return await self._finish(
                job.id,
                JobStatus.FAILED,
                error="no epics could be generated: " + "; ".join(ctx.failed_calls.values())[:500],
            )
        if options.update_of is not None:
            await self._take_over(job.id, options.update_of)
        if options.uploading and self._uploads is not None:
            if options.upload_mode == "manual":
                return await self._finish(job.id, JobStatus.AWAITING_UPLOAD)
            if options.upload_mode == "review":  # shown first; the user uploads (all or some epics)
                return await self._finish(job.id, JobStatus.AWAITING_REVIEW)
            progress.current_action, progress.current_agent = "Uploading to Azure DevOps", "Uploader"
            outcome = await self._uploads.upload(job.id, options, progress)
            if outcome == UploadOutcome.NEEDS_CREDENTIALS:
                return await self._finish(job.id, JobStatus.NEEDS_CREDENTIALS)
            clean = outcome == UploadOutcome.UPLOADED and not ctx.failed_calls
        else:
            clean = not ctx.failed_calls
        if clean:
            return await self._finish(job.id, JobStatus.COMPLETED)
        return await self._finish(
            job.id,
            JobStatus.COMPLETED_WITH_ERRORS,
            error=await self._reports.problems(await self._job(job.id)),
        )

    async def _take_over(self, job_id: str, previous_id: str) -> None:
        """A re-run takes over the previous job's work items before anything of it is uploaded."""
        previous = await self._job(previous_id)
        events = await rerun.take_over(self._store, self._pool, await self._job(job_id), previous)
        self._publish(events)
        labels = [e.payload["match"] for e in events if e.type == "item"]
        log.info("job_matched", previous=previous_id, **{m: labels.count(m) for m in sorted(set(labels))})

    async def _preflight(self, job_id: str, options: JobOptions) -> CheckReport | None:
        """The target checked before generating; a manual upload may go to a target readied later."""
        if not options.uploading or self._uploads is None or options.upload_mode == "manual":
            return None
        report = await self._uploads.preflight(job_id, options)
        if report is not None:
            await self._store.merge_metadata(
                job_id, {"preflight": report.as_dict(), "warnings": report.warnings()}
            )
        return report

    async def advise(self, vision: Vision) -> list[dict[str, Any]]:
        """What the vision lacks, as advice (before any token is spent)."""
        return await self._reports.advise(vision)

    def _progress_for(self, job: JobRow, options: JobOptions) -> Progress:
        progress = self._progress.get(job.id)
        if progress is None:
            progress = Progress.starting(job.id, options, time.monotonic())
            self._progress[job.id] = progress
        return progress

    async def _set_status(self, job_id: str, status: JobStatus, **payload: Any) -> list[EventRow]:
        events = await self._store.set_job_status(
            job_id, status, events=[NewEvent(type="stage", payload={"status": status, **payload})]
        )
        self._publish(events)
        return events

    async def _finish(self, job_id: str, status: JobStatus, error: str | None = None) -> JobRow:
        progress = self._progress.get(job_id)
        payload: dict[str, Any] = {"status": status, "error": error}
        if self._warnings.get(job_id):
            payload["warnings"] = self._warnings[job_id]
        if progress is not None:
            progress.status = status
            progress.current_action = action_of(status)
            final = status in TERMINAL_JOB_STATES
            progress.update_percent(final=final)
            payload["progress"] = progress.snapshot(time.monotonic(), time.time())
        kind = "final" if status in TERMINAL_JOB_STATES else "stage"
        events = await self._store.set_job_status(
            job_id, status, error=error, events=[NewEvent(type=kind, payload=payload)]
        )
        self._publish(events)
        if self._notifier is not None:
            self._notifier.notify(job_id, status)  # queued: delivery never holds the job up
        log.info("job_finished", job_id=job_id, status=status, **({"error": error[:200]} if error else {}))
        if status in TERMINAL_JOB_STATES:
            self._forget(job_id)
        return await self._job(job_id)

    def _forget(self, job_id: str) -> None:
        """The job has ended: its in-memory state (progress, per-job PAT, client) goes with it. A later
        retry rebuilds what it needs (and asks for the PAT again when the job came with one)."""
        self._progress.pop(job_id, None)
        self._warnings.pop(job_id, None)
        if self._uploads is not None:
            self._uploads.forget(job_id)

    def tracked_jobs(self) -> int:
        """How many jobs this manager holds in memory (bounded by the unfinished ones)."""
        live = {job_id for job_id, task in self._tasks.items() if not task.done()}
        return len(live | set(self._progress) | set(self._warnings))

    # ----- actions ----------------------------------------------------------------------------

    async def cancel(self, job_id: str) -> JobRow:
        job = await self._job(job_id)
        if job.status in TERMINAL_JOB_STATES:
            raise JobStateError(f"job {job_id} is already {job.status}")
        task = self._tasks.get(job_id)
        if task is not None and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        if self._uploads is not None:
            await self._uploads.cancel(job_id)
        return await self._finish(job_id, JobStatus.CANCELLED)

    async def start_upload(
        self, job_id: str, pat: str | None = None, epic_ids: Sequence[str] | None = None
    ) -> None:
        """Manual or review mode, or after new credentials: upload what the job generated, or only the
        subtrees of ``epic_ids`` (each must be an epic of this job)."""
        job = await self._job(job_id)
        if epic_ids:
            await self._check_epics(job_id, epic_ids)
        if self._uploads is None or not job.options.uploading:
            raise JobStateError(f"job {job_id} has no upload target")
        if job.status not in _UPLOADABLE:
            raise JobStateError(f"job {job_id} is {job.status}; it can upload once generation has finished")
        if self._leases is not None and not await self._leases.acquire(job_id):
            raise JobStateError(f"job {job_id} is being worked on by another instance")
        if pat:
            self._uploads.remember_pat(job_id, pat)
        if epic_ids:
            await edits.release(self._store, job_id, list(epic_ids))
        await self._set_status(job_id, JobStatus.RUNNING, stage="upload")  # streams and ETags see the restart
        upload = self._upload_leased(job_id, release=not epic_ids)
        self._track(job_id, asyncio.create_task(upload, name=f"upload-{job_id}"))

    async def _check_epics(self, job_id: str, epic_ids: Sequence[str]) -> None:
        epics = {r.id for r in await self._store.items(job_id) if r.kind == ItemKind.EPIC}
        wrong = [e for e in epic_ids if e not in epics]
        if wrong:
            raise InvalidInput(
                f"not an epic of job {job_id}: {', '.join(wrong)}",
                [{"field": "epic_ids", "message": f"{e} is not an epic of this job"} for e in wrong],
            )

    async def retry_uploads(self, job_id: str, pat: str | None = None) -> int:
        job = await self._job(job_id)
        if self._uploads is None:
            raise JobStateError("uploads are disabled (azure_devops.target: none)")
        if job.status == JobStatus.RUNNING:
            raise JobStateError(f"job {job_id} is still running")
        if job.status == JobStatus.FAILED and (job.metadata.get("preflight") or {}).get("fatal"):
            # Stopped by its pre-flight before generating anything: with new credentials (or a fixed
            # target) it starts over from the check.
            if pat:
                self._uploads.remember_pat(job_id, pat)
            await self._set_status(job_id, JobStatus.QUEUED, stage="preflight")
            self.start(job_id)
            return 0
        moved = await self._uploads.requeue(job_id)
        await self.start_upload(job_id, pat)
        return moved

    async def _upload_leased(self, job_id: str, *, release: bool = True) -> JobRow:
        try:
            return await self._upload_only(job_id, release=release)
        finally:
            if self._leases is not None:
                await self._leases.release(job_id)

    async def _upload_only(self, job_id: str, *, release: bool = True) -> JobRow:
        job = await self._job(job_id)
        options = job.options
        fresh = job_id not in self._progress  # freed when the job ended, or a restart: count from the store
        progress = self._progress_for(job, options)
        if fresh:
            for kind, states in (await self._store.item_counts(job_id)).items():
                if kind in progress.generated:
                    progress.generated[kind] = sum(states.values())
                    progress.uploaded[kind] = states.get(ItemState.UPLOADED, 0)
                    progress.failed[kind] = sum(states.get(s, 0) for s in FAILED_ITEM_STATES)
        failed_calls = job.metadata.get("failed_calls") or {}
        assert self._uploads is not None
        outcome = await self._uploads.upload(job_id, options, progress, release=release)
        if outcome == UploadOutcome.NEEDS_CREDENTIALS:
            return await self._finish(job_id, JobStatus.NEEDS_CREDENTIALS)
        if await self._held(job_id):
            return await self._finish(job_id, JobStatus.AWAITING_REVIEW)  # the other epics wait for review
        if outcome == UploadOutcome.UPLOADED and not failed_calls:
            return await self._finish(job_id, JobStatus.COMPLETED)
        return await self._finish(
            job_id,
            JobStatus.COMPLETED_WITH_ERRORS,
            error=await self._reports.problems(await self._job(job_id)),
        )

    # ----- queries ----------------------------------------------------------------------------

    async def _held(self, job_id: str) -> int:
        counts = await self._store.item_counts(job_id)
        return sum(states.get(ItemState.HELD, 0) for states in counts.values())

    async def _job(self, job_id: str) -> JobRow:
        job = await self._store.get_job(job_id)
        if job is None:
            raise JobNotFound(job_id)
        return job

    def drop(self, job_id: str) -> None:
        """Stop the job's local run without changing its state: another instance holds it now (its
        progress is then read from the job's events, like any job this instance does not run)."""
        self._progress.pop(job_id, None)
        task = self._tasks.get(job_id)
        if task is not None and not task.done():
            task.cancel()

    def running(self) -> set[str]:
        return {job_id for job_id, task in self._tasks.items() if not task.done()}

    def free_slots(self) -> int:
        return self._max_jobs - len(self.running())

    def progress(self, job_id: str) -> Progress | None:
        return self._progress.get(job_id)

    async def wait(self, job_id: str) -> JobRow:
        task = self._tasks.get(job_id)
        if task is not None:
            (outcome,) = await asyncio.gather(task, return_exceptions=True)
            if isinstance(outcome, Exception):  # not a failed job (that is a row): the run itself broke
                raise outcome
        return await self._job(job_id)

    async def close(self) -> None:
        tasks = [t for t in self._tasks.values() if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def parse_request_vision(vision: str | dict[str, Any]) -> Vision:
    return from_pasted(vision) if isinstance(vision, str) else from_mapping(vision)
