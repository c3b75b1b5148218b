"""REST handlers for jobs: create, list, read, cancel, backlog, export, progress, upload and retry."""

from __future__ import annotations

import hashlib

from aiohttp import web
from aiohttp.helpers import ETAG_ANY
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from outbox.records import JobRow
from service.errors import JobNotFound
from service.export import render
from service.requests import JobRequest
from stages.vision import parse_bytes
from web.bodies import read_json
from web.errors import BadRequest
from web.keys import SERVICES
from web.routing import job_links
from web.schemas import (
    JobCreated,
    JobDetail,
    JobList,
    JobSummary,
    UploadsRequeued,
    UploadStarted,
    reply,
)
from web.snapshots import backlog_view, progress_snapshot
from web.sse import etag_of

EXPORTS = {"json": ("application/json", "json"), "csv": ("text/csv", "csv"), "md": ("text/markdown", "md")}


class CredentialsBody(BaseModel):
    """Optional body of ``upload`` and ``retry-uploads``: a PAT for this job, held in memory only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    pat: SecretStr | None = Field(default=None, max_length=1000)


async def _job(request: web.Request) -> JobRow:
    job_id = request.match_info["id"]
    job = await request.app[SERVICES].store.get_job(job_id)
    if job is None:
        raise JobNotFound(job_id)
    return job


def _not_modified(request: web.Request, etag: str) -> bool:
    """Whether ``If-None-Match`` (parsed by aiohttp) names ``etag``, weak or strong, or ``*``."""
    value = etag.strip('"')
    return any(tag.value in (value, ETAG_ANY) for tag in request.if_none_match or ())


# ----- create and list --------------------------------------------------------------------------


async def create_job(request: web.Request) -> web.Response:
    body = await read_json(request)
    fmt = request.query.get("vision_format", "")
    if fmt and isinstance(body, dict) and isinstance(body.get("vision"), str):
        # A file the browser read as text: parse it like the CLI would (YAML/JSON become structured).
        if fmt not in ("yaml", "json", "md", "txt"):
            raise BadRequest(
                "invalid_request",
                "vision_format must be yaml, json, md or txt",
                [{"field": "vision_format", "message": f"unknown format {fmt!r}"}],
            )
        vision = parse_bytes(body["vision"].encode("utf-8"), f"vision.{fmt}")
        body = {**body, "vision": vision.as_mapping()}
    request_model = JobRequest.model_validate(body)
    job_id = await request.app[SERVICES].jobs.submit(request_model, refuse_copies=True)
    created = JobCreated(job_id=job_id, links=job_links(request, job_id))
    return reply(created, status=202, headers={"Location": f"/api/jobs/{job_id}"})


async def list_jobs(request: web.Request) -> web.Response:
    try:
        limit = max(1, min(500, int(request.query.get("limit", "100"))))
    except ValueError:
        raise BadRequest(
            "invalid_request", "limit must be an integer", [{"field": "limit", "message": "not an integer"}]
        ) from None
    jobs = await request.app[SERVICES].store.list_jobs(limit)
    digest = hashlib.sha256("".join(f"{j.id}{j.status}{j.last_seq};" for j in jobs).encode()).hexdigest()
    etag = f'"{digest[:20]}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if _not_modified(request, etag):
        raise web.HTTPNotModified(headers=headers)
    return reply(JobList(jobs=[JobSummary.of(j, job_links(request, j.id)) for j in jobs]), headers=headers)


# ----- one job ----------------------------------------------------------------------------------


async def get_job(request: web.Request) -> web.Response:
    job = await _job(request)
    services = request.app[SERVICES]
    items = await services.store.item_counts(job.id)
    summary = JobSummary.of(job, job_links(request, job.id)).model_dump()
    return reply(
        JobDetail(**summary, options=job.options.model_dump(mode="json"), metadata=job.metadata, items=items)
    )


async def cancel_job(request: web.Request) -> web.Response:
    job = await _job(request)
    row = await request.app[SERVICES].jobs.cancel(job.id)
    return reply(JobSummary.of(row, job_links(request, row.id)))


async def get_progress(request: web.Request) -> web.Response:
    job = await _job(request)
    etag = etag_of(job.last_seq)  # pages watching a finished job ask every 2 s: answer 304 before any work
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if _not_modified(request, etag):
        raise web.HTTPNotModified(headers=headers)
    snapshot = await progress_snapshot(request.app[SERVICES], job)
    return reply(snapshot, headers=headers)


async def get_backlog(request: web.Request) -> web.Response:
    job = await _job(request)
    return reply(await backlog_view(request.app[SERVICES], job))


async def export_job(request: web.Request) -> web.Response:
    fmt = request.query.get("format", "json")
    if fmt not in EXPORTS:
        raise BadRequest(
            "invalid_request",
            f"unknown export format {fmt!r}: use json, csv or md",
            [{"field": "format", "message": "must be one of json, csv, md"}],
        )
    job = await _job(request)
    items = await request.app[SERVICES].store.items(job.id)
    text = render(job, items, fmt)
    content_type, ext = EXPORTS[fmt]
    disposition = f'attachment; filename="backlog-{job.id[:8]}.{ext}"'
    return web.Response(
        text=text, content_type=content_type, charset="utf-8", headers={"Content-Disposition": disposition}
    )


async def retry_uploads(request: web.Request) -> web.Response:
    job = await _job(request)
    creds = CredentialsBody.model_validate(await read_json(request))
    pat = creds.pat.get_secret_value() if creds.pat else None
    moved = await request.app[SERVICES].jobs.retry_uploads(job.id, pat)
    return reply(UploadsRequeued(job_id=job.id, requeued=moved, links=job_links(request, job.id)), status=202)


class UploadBody(CredentialsBody):
    """Optional body of ``upload``: a PAT, and in review mode the epics to upload (default: all)."""

    epic_ids: list[str] | None = Field(default=None, max_length=500)


async def start_upload(request: web.Request) -> web.Response:
    job = await _job(request)
    body = UploadBody.model_validate(await read_json(request))
    pat = body.pat.get_secret_value() if body.pat else None
    await request.app[SERVICES].jobs.start_upload(job.id, pat, body.epic_ids)
    return reply(UploadStarted(job_id=job.id, links=job_links(request, job.id)), status=202)
