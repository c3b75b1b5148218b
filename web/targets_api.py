"""``POST /api/targets/check``: the pre-flight of an Azure DevOps target, alone (writes nothing there)."""

from __future__ import annotations

from aiohttp import web
from pydantic import BaseModel, ConfigDict, StrictBool

from outbox.ado.preflight import CheckReport, Problem
from service.requests import AdoRequest, JobRequest, resolve_options
from service.targets import check_job_target
from web.bodies import read_json
from web.keys import SERVICES
from web.schemas import TargetCheck, reply


class TargetCheckBody(BaseModel):
    """What to check: the job's ``azure_devops`` part (settings fill the rest) and whether QA is on."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    azure_devops: AdoRequest = AdoRequest()
    include_qa: StrictBool | None = None  # "yes" or 0 is a 400, as for a job


async def check_target(request: web.Request) -> web.Response:
    body = TargetCheckBody.model_validate(await read_json(request))
    services = request.app[SERVICES]
    job = JobRequest(vision="-", azure_devops=body.azure_devops, include_qa=body.include_qa)
    check_job_target(job, services.settings.azure_devops)  # the same allowed targets as a job (400)
    options = resolve_options(job, services.settings)
    pat = body.azure_devops.pat.get_secret_value() if body.azure_devops.pat else None
    if services.uploads is None or options.target == "none":
        off = Problem("no_target", "uploads are off (azure_devops.target: none)", "set a target to check")
        report = CheckReport(options.organization_url, options.project, problems=(off,))
    else:
        report = await services.uploads.check_options(options, pat)
    return reply(TargetCheck.model_validate(report.as_dict()))
