"""Authentication: one bearer token (``server.api_token_env``) guards every ``/api/*`` route and
``/metrics``; ``/healthz``, ``/readyz``, the UI's static files and ``/api/session`` stay open.

Scripts send ``Authorization: Bearer <token>``. The browser logs in once (``POST /api/session`` with
the token) and gets an HttpOnly, SameSite=Strict cookie holding a signed expiry, never the token; its
fetches and EventSource send it by themselves, so the token never appears in a URL. The signing key
is derived from the token: sessions survive a restart and all end when the token is rotated. Logout
revokes that session in the running service (a replayed copy of the cookie is refused); the list of
revoked sessions lives in memory until each would have expired anyway.

The cookie is signed with the standard library's ``hmac`` rather than a signing library
(itsdangerous): the format is one MAC over three fields, and revocation needs the nonce anyway.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
import time
from collections.abc import Callable

from aiohttp import web
from aiohttp.typedefs import Middleware
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from service.settings import ServerSettings
from web.bodies import read_json
from web.errors import Handler, error_response
from web.limits import LIMITS, LOGINS_PER_MINUTE, client_of, too_many
from web.schemas import Session, reply

COOKIE = "backlogd_session"
SESSION_PATH = "/api/session"
_KEY_LABEL = b"backlogd session cookie v1"


class LoginBody(BaseModel):
    """``POST /api/session``: the API token, exchanged for a session cookie."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    token: SecretStr = Field(max_length=4096)


class Auth:
    """Checks bearer tokens and issues/verifies session cookie values (``v1.<expires>.<nonce>.<mac>``)."""

    def __init__(
        self, token: str | None, session_seconds: float, clock: Callable[[], float] = time.time
    ) -> None:
        self._token = token.encode() if token else None
        self._key = hmac.new(self._token, _KEY_LABEL, hashlib.sha256).digest() if self._token else b""
        self.session_seconds = session_seconds
        self._clock = clock
        self._revoked: dict[str, float] = {}  # nonce -> expiry of logged-out sessions

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def token_ok(self, candidate: str) -> bool:
        return self._token is not None and hmac.compare_digest(candidate.encode(), self._token)

    def bearer_ok(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and self.token_ok(value.strip())

    def issue(self) -> str:
        payload = f"v1.{int(self._clock() + self.session_seconds)}.{secrets.token_urlsafe(9)}"
        return f"{payload}.{self._mac(payload)}"

    def session_ok(self, value: str) -> bool:
        payload, _, mac = value.rpartition(".")
        parts = payload.split(".")
        if not self.enabled or len(parts) != 3 or parts[0] != "v1" or not parts[1].isdigit():
            return False
        if not hmac.compare_digest(mac, self._mac(payload)) or int(parts[1]) <= self._clock():
            return False
        return parts[2] not in self._revoked

    def revoke(self, value: str) -> None:
        """Log out: this cookie value stops working here at once, even if a copy of it is replayed."""
        if not self.session_ok(value):
            return
        _, expires, nonce = value.rpartition(".")[0].split(".")
        now = self._clock()
        for gone in [n for n, until in self._revoked.items() if until <= now]:
            del self._revoked[gone]  # an expired cookie is refused anyway: forget it
        self._revoked[nonce] = float(expires)

    def _mac(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode(), hashlib.sha256).hexdigest()


def guarded(path: str) -> bool:
    """Paths that need the token when auth is on."""
    return (path.startswith("/api/") and path != SESSION_PATH) or path == "/metrics"


def middleware(auth: Auth) -> Middleware:
    @web.middleware
    async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not auth.enabled or not guarded(request.path):
            return await handler(request)
        if auth.bearer_ok(request.headers.get("Authorization", "")):
            return await handler(request)
        if auth.session_ok(request.cookies.get(COOKIE, "")):
            return await handler(request)  # cross-site writes were refused by web.guard already
        return error_response(
            401,
            "unauthorized",
            "this API needs `Authorization: Bearer <token>` (the token server.api_token_env names), "
            "or a session from POST /api/session",
            headers={"WWW-Authenticate": 'Bearer realm="backlogd"'},
        )

    return auth_middleware


# ----- /api/session --------------------------------------------------------------------------------


def session_state(auth: Auth, request: web.Request) -> Session:
    authenticated = not auth.enabled or auth.session_ok(request.cookies.get(COOKIE, ""))
    if auth.enabled and not authenticated:
        authenticated = auth.bearer_ok(request.headers.get("Authorization", ""))
    return Session(auth_required=auth.enabled, authenticated=authenticated)


def login_response(auth: Auth, request: web.Request) -> web.Response:
    resp = reply(Session(auth_required=auth.enabled, authenticated=True))
    if auth.enabled:
        resp.set_cookie(
            COOKIE,
            auth.issue(),
            max_age=int(auth.session_seconds),
            path="/",
            httponly=True,
            samesite="Strict",
            secure=request.secure,
        )
    return resp


def logout_response(auth: Auth) -> web.Response:
    resp = reply(Session(auth_required=auth.enabled, authenticated=not auth.enabled))
    resp.del_cookie(COOKIE, path="/")
    return resp


AUTH = web.AppKey("auth", Auth)


async def get_session(request: web.Request) -> web.Response:
    """Whether this API needs a login, and whether the caller has one."""
    return reply(session_state(request.app[AUTH], request))


async def post_session(request: web.Request) -> web.Response:
    """Log in: the token in the body, a session cookie in the answer (never the token)."""
    auth = request.app[AUTH]
    wait = request.app[LIMITS].logins.hit(client_of(request))
    if wait is not None:
        return too_many(
            "too_many_requests", "too many login attempts; wait a minute", wait, LOGINS_PER_MINUTE
        )
    body = await _login_body(request)
    if auth.enabled and not auth.token_ok(body.token.get_secret_value()):
        return error_response(401, "invalid_token", "that is not the API token")
    return login_response(auth, request)


async def delete_session(request: web.Request) -> web.Response:
    """Log out: the session is revoked server-side and the cookie cleared."""
    auth = request.app[AUTH]
    auth.revoke(request.cookies.get(COOKIE, ""))
    return logout_response(auth)


async def _login_body(request: web.Request) -> LoginBody:
    return LoginBody.model_validate(await read_json(request))


MIN_TOKEN_CHARS = 16


def listen_problem(server: ServerSettings, token: str | None) -> str | None:
    """Why ``serve`` must refuse to start with these settings and this token, or None."""
    name = server.api_token_env
    if name and not token:
        return (
            f"server.api_token_env names {name!r}, but neither the credential $CREDENTIALS_DIRECTORY/{name} "
            f"nor the environment variable {name} holds a token"
        )
    if token and len(token) < MIN_TOKEN_CHARS:
        return f"the API token in {name} is too short: use at least {MIN_TOKEN_CHARS} random characters"
    if not token and not is_loopback(server.host):
        return (
            f"refusing to listen on {server.host or 'every address'} without an API token: set "
            "server.api_token_env to the name of a credential or environment variable holding a token, "
            "or listen on 127.0.0.1"
        )
    return None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name other than localhost, or "" (every interface)
