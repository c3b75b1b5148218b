"""``POST /api/targets/check``: the pre-flight of an Azure DevOps target, alone (writes nothing there)."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict

from outbox.ado.preflight import CheckReport, Problem
from service.requests import AdoRequest, JobRequest, resolve_options
from web.jobs_api import json_body
from web.keys import SERVICES


class TargetCheckBody(BaseModel):
    """What to check: the job's ``azure_devops`` part (settings fill the rest) and whether QA is on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    azure_devops: AdoRequest = AdoRequest()
    include_qa: bool | None = None


async def check_target(request: web.Request) -> web.Response:
    body = TargetCheckBody.model_validate(await json_body(request))
    services = request.app[SERVICES]
    options = resolve_options(
        JobRequest(vision="-", azure_devops=body.azure_devops, include_qa=body.include_qa), services.settings
    )
    pat = body.azure_devops.pat.get_secret_value() if body.azure_devops.pat else None
    if services.uploads is None or options.target == "none":
        off = Problem("no_target", "uploads are off (azure_devops.target: none)", "set a target to check")
        report = CheckReport(options.organization_url, options.project, problems=(off,))
    else:
        report = await services.uploads.check_options(options, pat)
    return web.json_response(report.as_dict())
