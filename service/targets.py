"""Where a job may upload: the operator decides, not the request.

A job may name an ``organization_url`` only when it is the configured one or is listed in
``azure_devops.allowed_organizations``; the server's PAT is only ever sent to the configured
organization, so a job naming another allowed organization brings its own PAT. Upload URLs are
``https://`` (``http://`` only on a loopback address, for the emulator).
"""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from service.errors import TargetRefused

if TYPE_CHECKING:
    from service.requests import JobRequest
    from service.settings import AzureDevOpsSettings

ORG_FIELD = "azure_devops.organization_url"


def is_loopback_host(host: str) -> bool:
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def upload_url_problem(url: str) -> str | None:
    """Why uploads may not go to ``url`` (not a URL, not https, credentials in it), or None."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return f"{url[:100]!r} is not a valid URL"
    if parts.scheme not in ("https", "http") or not host:
        return f"{url[:100]!r} is not an https:// URL"
    if parts.scheme == "http" and not is_loopback_host(host):
        return f"{url[:100]!r}: only https:// is accepted (http:// only on a loopback address)"
    if parts.username is not None or parts.password is not None or parts.query or parts.fragment:
        return f"{url[:100]!r}: an organization URL carries no user, password, query or fragment"
    return None


def normal_org_url(url: str) -> str:
    """Scheme and host lower-cased, default port and trailing slashes dropped: one spelling per org."""
    parts = urlsplit(url.strip())
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    port = parts.port
    default = {"https": 443, "http": 80}.get(parts.scheme.lower())
    netloc = host if port is None or port == default else f"{host}:{port}"
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"


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
