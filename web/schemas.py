"""The API's response bodies as pydantic models: the handlers build every JSON answer through them and
``web.openapi`` generates the document's schemas from them, so the two cannot drift.

Models are serialised with ``reply``; a field's default still makes it required in the document
(``json_schema_serialization_defaults_required``), because every answer carries it.
"""

from __future__ import annotations

from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from hardware.probe import HardwareProfile
from hardware.sizing import Sizing
from outbox.records import JobRow
from stages.advice import Advice
from stages.scorecard import Metric
from vocab import ItemKind, ItemState, JobStatus

Links = dict[str, str]


class Body(BaseModel):
    """A response body: every field is always present."""

    model_config = ConfigDict(frozen=True, json_schema_serialization_defaults_required=True)


def reply(body: BaseModel, *, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    """``body`` as ``application/json``."""
    return web.json_response(text=body.model_dump_json(), status=status, headers=headers)


# ----- errors --------------------------------------------------------------------------------------


class ErrorInfo(Body):
    code: str
    message: str
    details: list[dict[str, Any]] = Field(description="one entry per problem: field, message, …")


class Error(Body):
    """Every error: ``{"error": {"code", "message", "details"}}``."""

    error: ErrorInfo


# ----- jobs ----------------------------------------------------------------------------------------


def job_title(job: JobRow) -> str:
    return job.vision.display_title(80) or job.id


class JobCreated(Body):
    job_id: str = Field(json_schema_extra={"format": "uuid"})
    links: Links


class UploadStarted(Body):
    """``upload``: the relay takes the job's items."""

    job_id: str
    links: Links


class UploadsRequeued(UploadStarted):
    """``retry-uploads``: how many dead and blocked items went back to pending."""

    requeued: int


class JobSummary(Body):
    job_id: str
    title: str
    status: JobStatus
    error: str | None
    created_at: float
    updated_at: float
    finished_at: float | None
    last_seq: int
    target: str | None
    upload_mode: str | None
    links: Links

    @classmethod
    def of(cls, job: JobRow, links: Links) -> JobSummary:
        """The summary of ``job``: written once, for the list, the detail and the cancel answer."""
        return cls(
            job_id=job.id,
            title=job_title(job),
            status=job.status,
            error=job.error,
            created_at=job.created_at,
            updated_at=job.updated_at,
            finished_at=job.finished_at,
            last_seq=job.last_seq,
            target=job.options.target,
            upload_mode=job.options.upload_mode,
            links=links,
        )


class JobList(Body):
    jobs: list[JobSummary]


class JobDetail(JobSummary):
    options: dict[str, Any]
    metadata: dict[str, Any]
    items: dict[str, dict[str, int]] = Field(description="item kind → upload state → count")


# ----- progress ------------------------------------------------------------------------------------


class KindCounts(Body):
    generated: int
    uploaded: int
    failed: int = Field(description="dead or blocked")


class ProgressSnapshot(Body):
    """``GET /api/jobs/{id}/progress``; a ``progress`` event's data has the same keys (its ``error``,
    ``last_event_id`` aside)."""

    model_config = ConfigDict(extra="allow")  # a live snapshot also tells its calls

    job_id: str
    status: JobStatus
    progress: float = Field(ge=0, le=100)
    current_action: str
    current_agent: str
    counts: dict[str, KindCounts] = Field(description="item kind → counts")
    eta_seconds: float | None
    timestamp: float
    error: str | None
    last_event_id: int
    etag: str


# ----- backlog -------------------------------------------------------------------------------------


class UploadState(Body):
    state: ItemState
    ado_id: int | None
    url: str | None
    rev: int | None = Field(description="the work item revision we last wrote")
    error: str | None


class Conflict(Body):
    """The item changed in Azure DevOps since our upload: our fields and theirs (with their ``rev``)."""

    ours: dict[str, Any]
    theirs: dict[str, Any]


Match = Literal["unchanged", "updated", "new", "vanished"]


class BacklogNode(Body):
    """An item; its body fields (acceptance criteria, steps, points, …) and its children's lists, named
    by the children's plural, come as further keys."""

    model_config = ConfigDict(extra="allow")

    id: str
    type: ItemKind
    parent_id: str | None
    title: str
    description: str
    sources: list[str]
    upload: UploadState
    match: Match | None = Field(description="a re-run's match to `update_of`; null otherwise")
    conflict: Conflict | None


class SentenceCoverage(Body):
    id: str
    text: str
    covered_by: list[str] = Field(description="the stories citing it; empty: uncovered")


class Backlog(Body):
    """The tree with each item's upload state, the test plans and suites, the vision's sentences with
    the stories covering each, and the counts per kind."""

    job_id: str
    title: str
    status: JobStatus
    last_seq: int
    epics: list[BacklogNode]
    test_plans: list[BacklogNode] = Field(description="test plans and suites (made by the uploader)")
    sentences: list[SentenceCoverage]
    counts: dict[str, KindCounts]


class ExportedJob(Body):
    id: str
    title: str
    status: JobStatus
    created_at: float
    finished_at: float | None
    vision: dict[str, Any]
    settings: dict[str, Any] = Field(description="the options the job ran with (never a secret)")


class QaExport(Body):
    id: str
    type: ItemKind
    title: str
    for_id: str | None = Field(description="the feature (plan) or story (suite) it tests")
    depends_on: list[str]
    upload: UploadState


class Traceability(Body):
    sentences: list[SentenceCoverage]
    uncovered: list[str]


class BacklogExport(Body):
    """``export?format=json``: the job, the tree, the test plans and suites, and traceability."""

    format: str
    job: ExportedJob
    epics: list[BacklogNode]
    test_plans: list[QaExport]
    test_suites: list[QaExport]
    traceability: Traceability


class EditConflict(Body):
    """409 on an edit: the work item changed in Azure DevOps since our upload; nothing was saved."""

    error: ErrorInfo
    ours: dict[str, Any]
    theirs: dict[str, Any]


class ItemsRemoved(Body):
    removed: list[str] = Field(description="the ids of the item and its subtree")
    azure_devops: list[dict[str, Any]] = Field(description="with in_ado: each work item closed or removed")


class RegenerateAccepted(Body):
    job_id: str
    item_id: str
    status: Literal["regenerating"]


# ----- quality, advice, target check ---------------------------------------------------------------


class QualityCard(Body):
    """``stages.scorecard.Scorecard`` as stored with the job, with its summary line."""

    ok: bool
    metrics: list[Metric]
    line: str = Field(description="the summary a terminal shows")


class Quality(Body):
    job_id: str
    status: JobStatus
    available: bool = Field(description="false until generation has finished")
    quality: QualityCard | None
    links: Links


class VisionAdvice(Body):
    advice: list[Advice]
    sentences: int


class TargetProblem(Body):
    code: str
    message: str
    fix: str
    fatal: bool
    disables_qa: bool


class TargetCheck(Body):
    ok: bool = Field(description="true only when nothing is wrong")
    fatal: bool = Field(description="a job to this target would not start")
    organization_url: str
    project: str
    process: str | None
    qa_available: bool
    passed: list[str]
    problems: list[TargetProblem]


# ----- session, health, hardware, the document -----------------------------------------------------


class Session(Body):
    auth_required: bool
    authenticated: bool


class Liveness(Body):
    status: Literal["ok"]


class Readiness(Body):
    status: Literal["ready", "not_ready"]
    checks: dict[str, bool]
    sse_clients: int


class HardwareReport(HardwareProfile, Sizing):
    """The probe and the sizing, flat, and the adaptive limits as they are now."""

    model_config = ConfigDict(frozen=True, json_schema_serialization_defaults_required=True)

    adaptive_limits: dict[str, dict[str, float | int | str]]


class OpenAPIDocument(Body):
    model_config = ConfigDict(extra="allow")

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]
    security: list[dict[str, list[str]]]
