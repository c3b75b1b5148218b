"""REST handlers for backlog quality: a job's quality model, and advice on a vision before a job."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field

from service.errors import JobNotFound
from service.jobs import parse_request_vision
from web.bodies import read_json
from web.keys import SERVICES
from web.routing import job_links
from web.schemas import Quality, VisionAdvice, reply


class AdviceBody(BaseModel):
    """Body of ``POST /api/vision/advice``: the vision as text (free text, YAML or JSON) or a mapping."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    vision: str | dict[str, Any] = Field(description="the vision, as for POST /api/jobs")


async def get_quality(request: web.Request) -> web.Response:
    """The job's quality model; ``available`` is false until generation has finished."""
    job_id = request.match_info["id"]
    job = await request.app[SERVICES].store.get_job(job_id)
    if job is None:
        raise JobNotFound(job_id)
    card = job.metadata.get("quality")
    body = Quality(
        job_id=job.id,
        status=job.status,
        available=card is not None,
        quality=card,
        links=job_links(request, job.id),
    )
    return reply(body, headers={"Cache-Control": "no-cache"})


async def post_advice(request: web.Request) -> web.Response:
    """What a vision lacks (no target users, no measurable metric, vague sentences): advice only."""
    body = AdviceBody.model_validate(await read_json(request))  # JSON only, within the parse budgets
    vision = parse_request_vision(body.vision)
    advice = await request.app[SERVICES].jobs.advise(vision)
    return reply(VisionAdvice.model_validate({"advice": advice, "sentences": len(vision.sentences)}))
