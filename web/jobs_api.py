"""REST handlers for jobs: create, list, read, cancel, backlog, export, progress, upload and retry."""

from __future__ import annotations

import hashlib

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from outbox.records import JobRow
from service.errors import JobNotFound
from service.export import render
from service.requests import JobRequest
from stages.vision import parse_bytes
from web.bodies import read_json
from web.errors import BadRequest
from web.keys import SERVICES
from web.snapshots import backlog_view, job_summary, job_title, links, progress_snapshot

_EXPORTS = {"json": ("application/json", "json"), "csv": ("text/csv", "csv"), "md": ("text/markdown", "md")}


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
    wanted = request.headers.get("If-None-Match", "")
    return any(tag.strip() in (etag, f"W/{etag}", "*") for tag in wanted.split(",")) if wanted else False


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
    job_id = await request.app[SERVICES].jobs.submit(request_model)
    return web.json_response(
        {"job_id": job_id, "links": links(job_id)}, status=202, headers={"Location": f"/api/jobs/{job_id}"}
    )


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
    return web.json_response({"jobs": [job_summary(j) for j in jobs]}, headers=headers)


# ----- one job ----------------------------------------------------------------------------------


async def get_job(request: web.Request) -> web.Response:
    job = await _job(request)
    services = request.app[SERVICES]
    body = {
        **job_summary(job),
        "options": job.options.model_dump(mode="json"),
        "metadata": job.metadata,
        "items": await services.store.item_counts(job.id),
    }
    return web.json_response(body)


async def cancel_job(request: web.Request) -> web.Response:
    job = await _job(request)
    row = await request.app[SERVICES].jobs.cancel(job.id)
    return web.json_response(job_summary(row))


async def get_progress(request: web.Request) -> web.Response:
    job = await _job(request)
    snapshot = await progress_snapshot(request.app[SERVICES], job)
    headers = {"ETag": snapshot["etag"], "Cache-Control": "no-cache"}
    if _not_modified(request, snapshot["etag"]):
        raise web.HTTPNotModified(headers=headers)
    return web.json_response(snapshot, headers=headers)


async def get_backlog(request: web.Request) -> web.Response:
    job = await _job(request)
    return web.json_response(await backlog_view(request.app[SERVICES], job))


async def export_job(request: web.Request) -> web.Response:
    fmt = request.query.get("format", "json")
    if fmt not in _EXPORTS:
        raise BadRequest(
            "invalid_request",
            f"unknown export format {fmt!r}: use json, csv or md",
            [{"field": "format", "message": "must be one of json, csv, md"}],
        )
    job = await _job(request)
    items = await request.app[SERVICES].store.items(job.id)
    text = render(items, fmt, job_title(job))
    content_type, ext = _EXPORTS[fmt]
    disposition = f'attachment; filename="backlog-{job.id[:8]}.{ext}"'
    return web.Response(
        text=text, content_type=content_type, charset="utf-8", headers={"Content-Disposition": disposition}
    )


async def retry_uploads(request: web.Request) -> web.Response:
    job = await _job(request)
    creds = CredentialsBody.model_validate(await read_json(request))
    pat = creds.pat.get_secret_value() if creds.pat else None
    moved = await request.app[SERVICES].jobs.retry_uploads(job.id, pat)
    return web.json_response({"job_id": job.id, "requeued": moved, "links": links(job.id)}, status=202)


async def start_upload(request: web.Request) -> web.Response:
    job = await _job(request)
    creds = CredentialsBody.model_validate(await read_json(request))
    pat = creds.pat.get_secret_value() if creds.pat else None
    await request.app[SERVICES].jobs.start_upload(job.id, pat)
    return web.json_response({"job_id": job.id, "links": links(job.id)}, status=202)
