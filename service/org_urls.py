"""Organization URLs: which ones uploads may go to, and one spelling per organization. Pure: the
settings validate with it, and the target rules compare with it."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


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
