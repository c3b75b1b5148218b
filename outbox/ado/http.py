"""One ADO request: auth headers, the rate gate, the timeout, response parsing and error classification.

Nothing here retries. Every response (any status) is checked for Retry-After and the rate-limit headers,
which pause or slow down the whole identity through the gate.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote

import aiohttp
from yarl import URL

from outbox.ado.errors import (
    AdoAmbiguous,
    AdoAuthError,
    AdoConflict,
    AdoError,
    AdoNotFound,
    AdoPermanent,
    AdoThrottled,
    AdoTransient,
)
from outbox.ado.gate import RateGate

_AUTH_HINT = "check the PAT and its scopes"
_SLOW_DELAY_SECONDS = 1.0  # X-RateLimit-Delay above this means "slow down" (reference §7)
# Conflicts the service documents as "try again": a concurrent save (TF26071, the revision mismatch).
_RETRYABLE_CONFLICTS = ("TF26071", "WorkItemRevisionMismatchException", "changed by someone else")
_CONFLICT_BACKOFF_SECONDS = 0.5  # Microsoft's own tooling: 500 ms base, exponential, up to 5 tries


@dataclass(frozen=True)
class Reply:
    status: int
    data: Any
    headers: Mapping[str, str]


def parse_seconds(value: str | None, now: Callable[[], float] = time.time) -> float | None:
    """Retry-After / X-RateLimit-Delay: seconds (possibly fractional) or an HTTP date."""
    if value is None or not value.strip():
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - now())
    except (TypeError, ValueError):
        return None


def _decode(raw: bytes) -> Any:
    """JSON body, tolerating a UTF-8 BOM; raises ValueError when the body is not JSON."""
    return json.loads(raw.decode("utf-8-sig"))


_MESSAGE_CHARS = 300
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f]+")


def summarise(text: str) -> str:
    """An upstream message as one short line: control characters out, whitespace collapsed, capped.
    Whatever the server answered is never copied whole into a job's error."""
    line = " ".join(_CONTROLS.sub(" ", text).split())
    return line if len(line) <= _MESSAGE_CHARS else line[: _MESSAGE_CHARS - 1] + "…"


def _service_message(raw: bytes, headers: Mapping[str, str]) -> str:
    """The WrappedException message (with its TF/VS code) plus the failing fields, summarised; for any
    other body only its type and size."""
    try:
        body = _decode(raw) if raw.strip() else None
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        message: str = body["message"]
        rules = (body.get("customProperties") or {}).get("RuleValidationErrors") or []
        fields = [r.get("fieldReferenceName") for r in rules if isinstance(r, dict)]
        named = [str(f) for f in fields if f and f not in message]
        return summarise(f"{message} (fields: {', '.join(named)})" if named else message)
    header = headers.get("X-TFS-ServiceError")
    if header:
        return summarise(unquote(header))
    if raw.strip():
        kind = headers.get("Content-Type", "unknown type").split(";")[0].strip()
        return summarise(f"a {kind} body of {len(raw)} bytes")
    return ""


def _type_key(raw: bytes) -> str:
    try:
        body = _decode(raw) if raw.strip() else None
    except ValueError:
        return ""
    return str(body.get("typeKey") or "") if isinstance(body, dict) else ""


class AdoHttp:
    """Sends one request through the gate and turns the response into data or a classified AdoError."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        pat: str,
        gate: RateGate,
        timeout_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        token = base64.b64encode(f":{pat}".encode()).decode("ascii")
        self._headers = {
            "Authorization": f"Basic {token}",
            "X-TFS-FedAuthRedirect": "Suppress",
            "Accept": "application/json",
        }
        self._session = session
        self._gate = gate
        self._timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._clock = clock

    async def call(
        self, method: str, url: URL, body: Any = None, *, patch: bool = False, write: bool = False
    ) -> Reply:
        """``write``: the request may change state, so a lost response is ambiguous, not transient."""
        headers = dict(self._headers)
        data = None
        if body is not None:
            headers["Content-Type"] = "application/json-patch+json" if patch else "application/json"
            data = json.dumps(body).encode()
        what = f"{method} {url.path}"
        async with self._gate.slot():
            started = self._clock()
            try:
                async with self._session.request(
                    method, url, headers=headers, data=data, timeout=self._timeout,
                    allow_redirects=False, raise_for_status=False,
                ) as resp:  # fmt: skip
                    raw = await resp.read()
                    status, resp_headers = resp.status, resp.headers
            except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
                raise AdoTransient(f"{what}: could not connect ({type(exc).__name__})") from None
            except TimeoutError:
                raise self._lost(what, write, "timed out") from None
            except aiohttp.ClientError as exc:
                raise self._lost(what, write, f"connection lost ({type(exc).__name__})") from None
            # Inside the slot: an adaptive gate attributes the signal to this request's grant.
            retry_after = self._observe(status, resp_headers, self._clock() - started)
        return self._classify(what, status, resp_headers, raw, retry_after, write)

    @staticmethod
    def _lost(what: str, write: bool, how: str) -> AdoError:
        if write:
            return AdoAmbiguous(f"{what}: {how} after the request was sent; the write may have happened")
        return AdoTransient(f"{what}: {how}")

    def _observe(self, status: int, headers: Mapping[str, str], latency: float) -> float | None:
        """Feed the gate from the rate-limit headers of any response; returns Retry-After."""
        retry_after = parse_seconds(headers.get("Retry-After"))
        delay = parse_seconds(headers.get("X-RateLimit-Delay"))
        if retry_after is not None:
            self._gate.pause(retry_after)
        slow = delay is not None and delay >= _SLOW_DELAY_SECONDS
        if status == 429 or retry_after is not None or slow or _nearly_exhausted(headers):
            self._gate.throttled(retry_after)
        elif 200 <= status < 300:
            self._gate.succeeded(latency)
        return retry_after

    @staticmethod
    def _classify(
        what: str, status: int, headers: Mapping[str, str], raw: bytes, retry_after: float | None, write: bool
    ) -> Reply:
        if status == 203:
            raise AdoAuthError(f"{what}: HTTP 203 sign-in page: {_AUTH_HINT}", status)
        if 200 <= status < 300:
            return Reply(status, _success_body(what, status, headers, raw), headers)
        message = _service_message(raw, headers)
        text = f"{what}: HTTP {status}" + (f": {message}" if message else "")
        if status in (401, 403):
            raise AdoAuthError(f"{text} ({_AUTH_HINT})", status)
        if status == 429:
            raise AdoThrottled(text, status, retry_after)
        if status >= 500:
            raise _server_error(text, status, headers, retry_after, write)
        if status == 404:
            raise AdoNotFound(text, status)
        if status == 409 and any(code in f"{text} {_type_key(raw)}" for code in _RETRYABLE_CONFLICTS):
            raise AdoConflict(text, status, retry_after or _CONFLICT_BACKOFF_SECONDS)
        raise AdoPermanent(text, status, retry_after)


def _success_body(what: str, status: int, headers: Mapping[str, str], raw: bytes) -> Any:
    """A 2xx must be JSON (or empty); HTML or other text is the sign-in page of a refused credential."""
    if "html" in headers.get("Content-Type", "").lower():
        raise AdoAuthError(f"{what}: HTTP {status} returned an HTML page: {_AUTH_HINT}", status)
    if not raw.strip():
        return None
    try:
        return _decode(raw)
    except ValueError:
        raise AdoAuthError(f"{what}: HTTP {status} with a non-JSON body: {_AUTH_HINT}", status) from None


def _server_error(
    text: str, status: int, headers: Mapping[str, str], retry_after: float | None, write: bool
) -> AdoError:
    if "X-VSS-HostOfflineError" in headers or "TF24668" in text:
        return AdoPermanent(text, status)  # the organization is stopped: retrying cannot help
    if write:  # Front Door answers 503 when the origin is slow: any 5xx on a write may have committed
        return AdoAmbiguous(f"{text}; the write may have happened", status, retry_after)
    if retry_after is not None:
        return AdoThrottled(text, status, retry_after)
    return AdoTransient(text, status)


def _nearly_exhausted(headers: Mapping[str, str]) -> bool:
    """X-RateLimit-Remaining under 10% of X-RateLimit-Limit: slow down before being delayed."""
    try:
        remaining = float(headers["X-RateLimit-Remaining"])
        limit = float(headers["X-RateLimit-Limit"])
    except (KeyError, ValueError):
        return False
    return limit > 0 and remaining < 0.1 * limit
