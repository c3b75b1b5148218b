"""PAT authentication (E12): Basic with `:PAT` (any user name) or Bearer; failures look like the service's.

An unknown token gets 401 with an empty body when the client suppressed the sign-in redirect
(`X-TFS-FedAuthRedirect: Suppress`) or used PATCH, and otherwise 203 with an HTML sign-in page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress

from aiohttp import web
from aiohttp.typedefs import Handler as NextHandler

from emulator.errors import AdoError
from emulator.routing import EMULATOR_STATE, IDENTITY_KEY, ROUTE_KEY, RouteMatch

SIGN_IN_PAGE = (
    "<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head>"
    "<body><h1>Sign In</h1><p>Sign in to your account to continue.</p></body></html>"
)


def token_of(header: str) -> str | None:
    scheme, _, credentials = header.partition(" ")
    if scheme.casefold() == "bearer":
        return credentials.strip() or None
    if scheme.casefold() != "basic":
        return None
    try:
        decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, sep, pat = decoded.partition(":")
    return pat if sep and pat else None


def is_loopback_name(host: str) -> bool:
    """``Host`` names a loopback address (127.0.0.0/8, ::1) or localhost."""
    name = host.strip().lower()
    name = name[1 : name.find("]")] if name.startswith("[") else name.rsplit(":", 1)[0]
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def identity_of(token: str) -> str:
    """Rate-limit identity: a digest, so the token itself is never kept."""
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def rejection(request: web.Request) -> web.Response:
    suppressed = request.headers.get("X-TFS-FedAuthRedirect", "").casefold() == "suppress"
    if suppressed or request.method == "PATCH":
        return web.Response(
            status=401, headers={"WWW-Authenticate": f'Basic realm="{request.scheme}://{request.host}/"'}
        )
    return web.Response(status=203, text=SIGN_IN_PAGE, content_type="text/html", charset="utf-8")


@web.middleware
async def auth_middleware(request: web.Request, handler: NextHandler) -> web.StreamResponse:
    match: RouteMatch | None = request.get(ROUTE_KEY)
    if match is not None and match.route.public:
        if not is_loopback_name(request.host):  # a DNS-rebinding page must not read the human pages
            return web.Response(status=421, text="this emulator answers to loopback names only")
        return await handler(request)
    if match is None:
        return await handler(request)
    token = token_of(request.headers.get("Authorization", ""))
    config = request.app[EMULATOR_STATE].config
    if token is not None and token in config.expired_pats:
        raise AdoError(
            401,
            "AccessCheckException",
            "Access Denied: The Personal Access Token used has expired.",
            custom_properties={"Descriptor": None, "NamespaceId": "00000000-0000-0000-0000-000000000000"},
        )
    if token is None or (config.pats is not None and token not in config.pats):
        return rejection(request)
    request[IDENTITY_KEY] = identity_of(token)
    return await handler(request)
