"""Where a job may upload: the operator decides, not the request.

A job may name an ``organization_url`` only when it is the configured one or is listed in
``azure_devops.allowed_organizations``; the server's PAT is only ever sent to the configured
organization, so a job naming another allowed organization brings its own PAT. Upload URLs are
``https://`` (``http://`` only on a loopback address, for the emulator).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from service.errors import TargetRefused
from service.org_urls import normal_org_url, upload_url_problem

if TYPE_CHECKING:
    from service.requests import JobRequest
    from service.settings import AzureDevOpsSettings

ORG_FIELD = "azure_devops.organization_url"


def may_use_server_pat(organization_url: str, settings: AzureDevOpsSettings) -> bool:
    """The server's PAT goes to the configured organization and nowhere else."""
    return bool(settings.organization_url) and normal_org_url(organization_url) == normal_org_url(
        settings.organization_url
    )


def check_job_target(request: JobRequest, settings: AzureDevOpsSettings) -> None:
    """Refuse (TargetRefused, a 400 naming the setting) a job naming an organization it may not use."""
    req = request.azure_devops
    if req.organization_url is None or (req.target or settings.target) != "ado":
        return  # the configured organization (or the embedded emulator, or no upload)
    problem = upload_url_problem(req.organization_url)
    if problem:
        raise TargetRefused(ORG_FIELD, problem)
    if normal_org_url(req.organization_url) not in settings.allowed_upload_organizations():
        raise TargetRefused(
            ORG_FIELD,
            f"{req.organization_url[:100]!r} is not an organization this service uploads to: the operator "
            "lists them in azure_devops.allowed_organizations (the configured azure_devops.organization_url "
            "is always allowed)",
        )
    if req.pat is None and not may_use_server_pat(req.organization_url, settings):
        raise TargetRefused(
            "azure_devops.pat",
            "this organization is not the configured azure_devops.organization_url, so the server's PAT "
            "is not sent there: the job must bring its own azure_devops.pat",
        )
