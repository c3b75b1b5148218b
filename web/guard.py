"""Requests must come from us, and every response says how a browser may use it.

Host not in server.allowed_hosts                          421 misdirected_request  (DNS rebinding;
                                                          /healthz and /readyz answer any Host, for
                                                          probes that address the service by IP)
POST/PUT/PATCH/DELETE with an Origin that is not ours     403 cross_site_request   (every mode)
a request body that is not Content-Type: application/json 415 unsupported_media_type (a cross-site
                                                          ``<form enctype="text/plain">`` cannot send it)

Every response (errors, static files, the UI) carries the security headers below; the UI runs
under this Content-Security-Policy (scripts and styles from our own origin only).

Written here rather than through a security-headers package: the few fixed headers and the Host and
Origin checks are plain comparisons against the settings, and no aiohttp package does all three.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.typedefs import Middleware

from service.settings import ServerSettings
from web.bodies import is_json
from web.errors import Handler, error_response

_WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_PROBES = frozenset({"/healthz", "/readyz"})  # say nothing a rebinding page could use
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def host_name(host: str) -> str:
    """``Host``'s name without the port, lower case, an IPv6 address without brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def foreign_origin(request: web.Request) -> str | None:
    """The Origin of a state-changing request when it is not this service's own, else None."""
    origin = request.headers.get("Origin")
    if origin is None:
        return None  # not sent by a browser's cross-site fetch or form (they always send it)
    try:
        parts = urlsplit(origin)
    except ValueError:
        return origin
    if parts.scheme not in ("http", "https") or parts.netloc.lower() != request.host.lower():
        return origin
    return None


def middleware(server: ServerSettings) -> Middleware:
    hosts = server.answers_to()

    @web.middleware
    async def guard_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if host_name(request.host) not in hosts and request.path not in _PROBES:
            message = (
                f"this service does not answer to the host {host_name(request.host)[:100]!r}: "
                "add it to server.allowed_hosts"
            )
            return error_response(
                421, "misdirected_request", message, [{"field": "Host", "message": message}]
            )
        if request.method in _WRITES:
            origin = foreign_origin(request)
            if origin is not None:
                message = f"cross-site requests are refused (Origin {origin[:100]!r} is not this service)"
                return error_response(
                    403, "cross_site_request", message, [{"field": "Origin", "message": message}]
                )
            if request.body_exists and not is_json(request):
                message = f"send the body as Content-Type: application/json (got {request.content_type!r})"
                details = [{"field": "Content-Type", "message": message}]
                return error_response(415, "unsupported_media_type", message, details)
        return await handler(request)

    return guard_middleware


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """``on_response_prepare``: every response, whatever produced it, gets the headers."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
