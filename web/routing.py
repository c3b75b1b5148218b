"""What one route entry says: method, path, handler, and everything the OpenAPI document tells about
it. ``web.routes`` lists them; ``web.app`` registers them and ``web.openapi`` describes them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel

from web.errors import Handler
from web.schemas import Error, Links

Schema = Mapping[str, Any]


@dataclass(frozen=True)
class Reply:
    """One documented status: a JSON body of ``model``, other media types, or no body."""

    description: str
    model: type[BaseModel] | None = None
    media: Mapping[str, Schema] = field(default_factory=dict)  # further content types → schema
    headers: Mapping[str, str] = field(default_factory=dict)  # header name → what it says
    link_job: bool = False  # its ``job_id`` links to every operation on one job


@dataclass(frozen=True)
class Param:
    name: str
    where: Literal["query", "header"]
    schema: Schema
    description: str = ""


@dataclass(frozen=True)
class Route:
    """One endpoint. ``responses`` maps each status it answers with to its ``Reply`` (every operation
    also gets the ``Error`` body as its default); ``link`` names it in a job's ``links``."""

    method: Literal["GET", "POST", "PATCH", "PUT", "DELETE"]
    path: str
    handler: Handler
    operation_id: str
    summary: str
    responses: Mapping[int, Reply]
    body: type[BaseModel] | None = None  # the JSON request body's model
    body_required: bool = False
    params: tuple[Param, ...] = ()
    open: bool = False  # answers without the API token even when auth is on
    link: str | None = None  # its name among a job's ``links`` (a route on one job)
    link_query: str = ""  # the query that link carries

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(part[1:-1] for part in self.path.split("/") if part.startswith("{"))


@dataclass(frozen=True)
class JobLinks:
    """A job's ``links``: the routes of the table that carry a link name, and the UI's page."""

    templates: tuple[tuple[str, str], ...]  # (name, path with ``{id}`` and its query)

    @classmethod
    def of_routes(cls, routes: tuple[Route, ...]) -> JobLinks:
        named = ((r.link, r.path + (f"?{r.link_query}" if r.link_query else "")) for r in routes if r.link)
        return cls(tuple(named))

    def of(self, job_id: str) -> Links:
        links = {name: path.replace("{id}", job_id) for name, path in self.templates}
        return {**links, "ui": f"/#/jobs/{job_id}"}


JOB_LINKS = web.AppKey("job_links", JobLinks)


def job_links(request: web.Request, job_id: str) -> Links:
    return request.app[JOB_LINKS].of(job_id)


def error(description: str, *, retry_after: bool = False) -> Reply:
    return Reply(description, Error, headers={"Retry-After": "seconds to wait"} if retry_after else {})


NOT_MODIFIED = Reply("not modified")
# The refusals every state-changing, limited operation may answer with.
LIMITED: Mapping[int, Reply] = {
    401: error("the API token is required (server.api_token_env is set)"),
    403: error("a state-changing request from another Origin"),
    413: error("the body or the vision is over its limit (details give the limit)"),
    415: error("a body that is not Content-Type: application/json"),
    421: error("a Host outside server.allowed_hosts"),
    429: error("too many requests, jobs or streams", retry_after=True),
    503: error("the service is shutting down", retry_after=True),
}
IF_NONE_MATCH = Param(
    "If-None-Match", "header", {"type": "string"}, "the ETag of the last response; 304 when nothing changed"
)
