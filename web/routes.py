"""The route table, written once: ``web.app`` registers it and ``web.openapi`` generates the document
from it and the models of ``web.schemas``. A new endpoint is one ``Route`` entry here."""

from __future__ import annotations

from aiohttp import web

from service.item_rules import ItemPatch, NewItemBody, RegenerateBody, ResolveBody
from service.requests import JobRequest
from web import auth, health, items_api, jobs_api, limits, metrics, quality_api, targets_api
from web.auth import LoginBody
from web.jobs_api import CredentialsBody, UploadBody
from web.openapi import DOCUMENT, openapi, spec
from web.quality_api import AdviceBody
from web.routing import IF_NONE_MATCH, JOB_LINKS, LIMITED, NOT_MODIFIED, JobLinks, Param, Reply, Route, error
from web.schemas import (
    Backlog,
    BacklogExport,
    BacklogNode,
    EditConflict,
    HardwareReport,
    ItemsRemoved,
    JobCreated,
    JobDetail,
    JobList,
    JobSummary,
    Liveness,
    OpenAPIDocument,
    ProgressSnapshot,
    Quality,
    Readiness,
    RegenerateAccepted,
    Session,
    TargetCheck,
    UploadsRequeued,
    UploadStarted,
    VisionAdvice,
)
from web.sse import MAX_EVENT_ID, SSE_EVENT, stream_progress
from web.targets_api import TargetCheckBody

_OK = "OK"
_EVENT_ID = {"type": "integer", "minimum": 0, "maximum": MAX_EVENT_ID}  # outside: 400 before the stream
_TEXT = {"type": "string"}
_AUTHOR = Param("X-Backlogd-Author", "header", {"type": "string", "maxLength": 80},
                "who made the edit (else token, session or local)")  # fmt: skip
_EDIT_REFUSED = {409: error("the item or its subtree is in a state that refuses this (code says which)")}

# fmt: off
ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/session", auth.get_session, "GetSession", "Whether a login is needed and held",
          {200: Reply(_OK, Session)}, open=True),
    Route("POST", "/api/session", auth.post_session, "LogIn",
          "Log in with the API token: sets an HttpOnly, SameSite=Strict session cookie",
          {200: Reply(_OK, Session), 429: LIMITED[429]}, body=LoginBody, body_required=True, open=True),
    Route("DELETE", "/api/session", auth.delete_session, "LogOut", "Log out: clears the cookie",
          {200: Reply(_OK, Session)}, open=True),
    Route("POST", "/api/jobs", limits.job_limits(jobs_api.create_job), "CreateJob",
          "Create and start a job (only `vision` is required). A vision an earlier job (not failed or "
          "cancelled) already made for the same organization and project is refused with 409 "
          "`backlog_exists` (details[0]: field `update_of`, `job_id` of the latest such job) unless the "
          "body says `update_of` (update that backlog: items are matched to its work items) or "
          "`new_copy: true`",
          {202: Reply("accepted: the job runs (or waits for a slot)", JobCreated, link_job=True),
           400: error("an invalid field; `update_of` not updatable"),
           404: error("`update_of` names no job (details name the field)"),
           409: error("backlog_exists: say update_of or new_copy"), **LIMITED},
          body=JobRequest, body_required=True,
          params=(Param("vision_format", "query", {"enum": ["yaml", "json", "md", "txt"]},
                        "parse a string `vision` as the content of a file of this format"),)),
    Route("GET", "/api/jobs", jobs_api.list_jobs, "ListJobs", "List recent jobs",
          {200: Reply(_OK, JobList), 304: NOT_MODIFIED},
          params=(Param("limit", "query", {"type": "integer"}), IF_NONE_MATCH)),
    Route("GET", "/api/jobs/{id}", jobs_api.get_job, "GetJob", "One job: status, options, item counts",
          {200: Reply(_OK, JobDetail)}, link="self"),
    Route("DELETE", "/api/jobs/{id}", jobs_api.cancel_job, "CancelJob", "Cancel the job",
          {200: Reply(_OK, JobSummary)}),
    Route("GET", "/api/jobs/{id}/backlog", jobs_api.get_backlog, "GetBacklog",
          "The backlog tree with each item's upload state, ADO id, URL and error",
          {200: Reply(_OK, Backlog)}, link="backlog"),
    Route("GET", "/api/jobs/{id}/export", jobs_api.export_job, "ExportJob", "Download the backlog",
          {200: Reply("attachment", BacklogExport, media={"text/csv": _TEXT, "text/markdown": _TEXT})},
          params=(Param("format", "query", {"enum": list(jobs_api.EXPORTS)}),),
          link="export", link_query="format=json"),
    Route("GET", "/api/jobs/{id}/progress", jobs_api.get_progress, "GetProgress",
          "Progress snapshot; ETag is the job's last event seq",
          {200: Reply(_OK, ProgressSnapshot), 304: NOT_MODIFIED}, params=(IF_NONE_MATCH,), link="progress"),
    Route("GET", "/api/jobs/{id}/quality", quality_api.get_quality, "GetQuality",
          "The backlog's quality model: each metric, its target and the items that fell short",
          {200: Reply(_OK, Quality)}, link="quality"),
    Route("POST", "/api/vision/advice", quality_api.post_advice, "AdviseVision",
          "What a vision lacks before any token is spent (advice, never a refusal)",
          {200: Reply(_OK, VisionAdvice), **LIMITED}, body=AdviceBody, body_required=True),
    Route("POST", "/api/jobs/{id}/retry-uploads", jobs_api.retry_uploads, "RetryUploads",
          "Re-queue dead and blocked items and upload them",
          {202: Reply(_OK, UploadsRequeued)}, body=CredentialsBody, link="retry_uploads"),
    Route("POST", "/api/jobs/{id}/upload", jobs_api.start_upload, "StartUpload",
          "Start the upload (manual or review mode: all, or the subtrees of epic_ids; or after new "
          "credentials)", {202: Reply(_OK, UploadStarted)}, body=UploadBody, link="upload"),
    Route("POST", "/api/jobs/{id}/items", items_api.add_item, "AddItem",
          "Add an item under parent_id (its kind must be a child kind of the parent's)",
          {201: Reply("the new item as the backlog shows it", BacklogNode), **_EDIT_REFUSED},
          body=NewItemBody, body_required=True, params=(_AUTHOR,)),
    Route("PATCH", "/api/jobs/{id}/items/{item}", items_api.patch_item, "EditItem",
          "Edit an item; an uploaded one becomes an update of its work item (JSON-Patch testing the rev)",
          {200: Reply("the item as the backlog shows it", BacklogNode),
           409: Reply("changed in Azure DevOps since our upload: nothing saved", EditConflict)},
          body=ItemPatch, body_required=True, params=(_AUTHOR,)),
    Route("DELETE", "/api/jobs/{id}/items/{item}", items_api.delete_item, "DeleteItem",
          "Delete an item and its subtree from the backlog; with in_ado=true also close or remove its "
          "work items (azure_devops.delete_action)", {200: Reply(_OK, ItemsRemoved), **_EDIT_REFUSED},
          params=(_AUTHOR, Param("in_ado", "query", {"type": "boolean"}))),
    Route("POST", "/api/jobs/{id}/items/{item}/resolve", items_api.resolve_item, "ResolveItem",
          "Resolve a conflict: keep ours (written over theirs) or theirs (adopted, nothing written)",
          {200: Reply(_OK, BacklogNode), **_EDIT_REFUSED}, body=ResolveBody, body_required=True,
          params=(_AUTHOR,)),
    Route("POST", "/api/jobs/{id}/items/{item}/regenerate", items_api.regenerate_item, "RegenerateItem",
          "Regenerate the item's children with an instruction (409 children_uploaded once they are in "
          "Azure DevOps); the result arrives as an edit event",
          {202: Reply(_OK, RegenerateAccepted), **_EDIT_REFUSED}, body=RegenerateBody, body_required=True,
          params=(_AUTHOR,)),
    Route("POST", "/api/targets/check", targets_api.check_target, "CheckTarget",
          "Pre-flight of an Azure DevOps target (connection, PAT, project, process, fields, rights); "
          "writes nothing", {200: Reply(_OK, TargetCheck)}, body=TargetCheckBody),
    Route("GET", "/api/progress/stream/{id}", limits.stream_limits(stream_progress), "StreamProgress",
          "Live events (SSE); replays after Last-Event-ID",
          {200: Reply("text/event-stream: `id:` = seq, `event:` = progress|item|upload|stage|edit|final|"
                      "error|shutdown, `data:` = JSON; heartbeat comments; a `retry:` hint",
                      media={"text/event-stream": SSE_EVENT}),
           204: Reply("the job finished and nothing was missed"), 429: LIMITED[429]},
          params=(Param("Last-Event-ID", "header", _EVENT_ID), Param("lastEventId", "query", _EVENT_ID)),
          link="stream"),
    Route("GET", "/api/hardware", health.hardware, "GetHardware", "Detected hardware",
          {200: Reply(_OK, HardwareReport)}),
    Route("GET", "/api/openapi.json", openapi, "GetOpenAPI", "This document",
          {200: Reply(_OK, OpenAPIDocument)}),
    Route("GET", "/healthz", health.healthz, "Liveness", "Liveness", {200: Reply(_OK, Liveness)}, open=True),
    Route("GET", "/readyz", health.readyz, "Readiness",
          "Readiness: store writable, relay alive, not draining",
          {200: Reply(_OK, Readiness), 503: Reply("not ready", Readiness)}, open=True),
    Route("GET", "/metrics", metrics.metrics, "Metrics",
          "Prometheus metrics (needs the token when auth is on)",
          {200: Reply("Prometheus text format", media={"text/plain": _TEXT})}),
)
# fmt: on


def install(app: web.Application, routes: tuple[Route, ...] = ROUTES) -> None:
    """Register the table's routes and what is derived from it: the OpenAPI document, a job's links."""
    app[DOCUMENT] = spec(routes)
    app[JOB_LINKS] = JobLinks.of_routes(routes)
    for route in routes:
        if route.method == "GET":
            app.router.add_get(route.path, route.handler)  # and HEAD
        else:
            app.router.add_route(route.method, route.path, route.handler)
