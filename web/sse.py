"""``GET /api/progress/stream/{id}``: a job's events as Server-Sent Events.

Subscribe first, then replay the table after ``Last-Event-ID`` (header, or ``?lastEventId=`` for a
first connection), then drain the live queue skipping what was already sent: no gap, no duplicate.
``final`` ends the stream; a reconnect to a finished job with nothing missed gets 204, which makes
EventSource stop instead of reconnecting forever. A client too slow for its bounded queue is
dropped (the stream ends; its EventSource reconnects and replays from the table).

aiohttp-sse holds the response, the heartbeat and the send timeout; the frames themselves are
encoded here once per event (``encode_frame``) and the same bytes go to every client, where its
``send()`` would encode them again for each one.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from aiohttp import web
from aiohttp_sse import EventSourceResponse

from outbox.backend import StoreBackend
from outbox.records import EventRow
from service.broadcaster import Subscription
from service.errors import JobNotFound
from vocab import TERMINAL_JOB_STATES
from web.errors import BadRequest
from web.keys import DRAINING, SERVICES, SETTINGS, STREAMS
from web.streams import LiveStream, StreamRegistry

_SEND_ERRORS = (ConnectionError, TimeoutError, RuntimeError)  # RuntimeError: write after EOF


def etag_of(seq: int) -> str:
    return f'"{seq}"'


def event_data(ev: EventRow) -> dict[str, Any]:
    """The event payload as served: progress snapshots also carry their ETag."""
    if ev.type == "progress":
        return {**ev.payload, "etag": etag_of(ev.seq)}
    if ev.type == "final" and isinstance(ev.payload.get("progress"), dict):
        return {**ev.payload, "progress": {**ev.payload["progress"], "etag": etag_of(ev.seq)}}
    return ev.payload


MAX_EVENT_ID = 2**53  # what a browser's JavaScript number holds exactly
EVENT_TYPES = ("progress", "item", "upload", "stage", "edit", "final", "error", "shutdown")
SSE_EVENT = {  # one event of the stream for the OpenAPI document: `data:` is the JSON payload as text
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "event": {"enum": list(EVENT_TYPES)},
        "data": {"type": "string", "contentMediaType": "application/json"},
    },
}


def last_event_id(request: web.Request) -> int:
    """The seq to resume after (the header, else ``?lastEventId=``); either one that is not an integer
    in 0…2^53 is a 400 (before any byte of the stream is sent, so a browser does not reconnect with it
    forever)."""
    header = _event_id("Last-Event-ID", request.headers.get("Last-Event-ID"))
    query = _event_id("lastEventId", request.query.get("lastEventId"))
    return header if header is not None else query or 0


def _event_id(field: str, value: str | None) -> int | None:
    raw = (value or "").strip()
    if not raw:
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 16 or int(raw) > MAX_EVENT_ID:
        message = f"must be an integer from 0 to {MAX_EVENT_ID} (got {raw[:40]!r})"
        raise BadRequest("invalid_request", f"{field} {message}", [{"field": field, "message": message}])
    return int(raw)


async def stream_progress(request: web.Request) -> web.StreamResponse:
    settings = request.app[SETTINGS].progress
    if not settings.enable_sse:
        raise web.HTTPNotFound(
            text="live progress streaming is disabled (progress.enable_sse: false); "
            "poll GET /api/jobs/{id}/progress with If-None-Match instead"
        )
    services = request.app[SERVICES]
    job_id = request.match_info["id"]
    after = last_event_id(request)
    job = await services.store.get_job(job_id)
    if job is None:
        raise JobNotFound(job_id)
    if job.status in TERMINAL_JOB_STATES and job.last_seq <= after:
        return web.Response(status=204)  # finished and nothing missed: EventSource stops here
    if request.app[DRAINING].is_set():
        raise web.HTTPServiceUnavailable(text="the service is shutting down", headers={"Retry-After": "1"})
    live = LiveStream(job_id, services.broadcaster.subscribe(job_id), lambda: _gone(request))
    registry = request.app[STREAMS]
    registry.add(live)
    resp = EventSourceResponse(
        ping_interval=settings.heartbeat_seconds,
        send_timeout=min(30.0, max(5.0, settings.heartbeat_seconds * 2)),
    )
    watcher: asyncio.Task[None] | None = None
    try:
        await resp.prepare(request)
        watcher = asyncio.create_task(resp.wait())  # ends when a heartbeat write fails: the client left
        watcher.add_done_callback(lambda _: live.stop("disconnected"))
        await resp.write(f"retry: {settings.retry_ms}\r\n\r\n".encode())
        await _stream(resp, services.store, live, after, registry)
    except _SEND_ERRORS:
        pass
    finally:
        registry.discard(live)
        live.subscription.close()
        if watcher is not None:
            resp.stop_streaming()
            await asyncio.gather(watcher, return_exceptions=True)
    return resp


def _gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _stream(
    resp: EventSourceResponse, store: StoreBackend, live: LiveStream, after: int, registry: StreamRegistry
) -> None:
    sent = await _replay(resp, store, live.job_id, after, None, registry)
    job = await store.get_job(live.job_id)
    if job is not None and job.status in TERMINAL_JOB_STATES and job.last_seq <= sent:
        return
    sub = live.subscription
    while True:
        batch = _take_ready(await sub.get(), sub)  # everything already queued goes out in one write
        chunks: list[bytes] = []
        for ev in batch:
            if ev is None or ev.seq <= sent:
                continue
            if ev.seq > sent + 1:  # never expected (commits publish in order), but never skip a gap
                await _write(resp, chunks)
                sent = await _replay(resp, store, live.job_id, sent, ev.seq - 1, registry)
            chunks.append(registry.frame(ev))
            sent = ev.seq
            if ev.type == "final":
                await _write(resp, chunks)
                return
        await _write(resp, chunks)
        if not batch or batch[-1] is None:
            break
    if live.stop_reason == "shutdown":
        data = json.dumps({"reason": "the service is shutting down; reconnect shortly"})
        await resp.write(f"event: shutdown\r\ndata: {data}\r\n\r\n".encode())


def _take_ready(first: EventRow | None, sub: Subscription) -> list[EventRow | None]:
    """The event just received plus whatever is already waiting; a None (end) is kept last."""
    batch = [first]
    while first is not None and not sub.queue.empty():
        nxt = sub.queue.get_nowait()
        batch.append(nxt)
        if nxt is None:
            break
    if batch[-1] is not None and sub.dropped and sub.queue.empty():
        batch.append(None)
    return batch


async def _replay(
    resp: EventSourceResponse,
    store: StoreBackend,
    job_id: str,
    after: int,
    upto: int | None,
    registry: StreamRegistry,
) -> int:
    """Send the committed events after ``after`` (up to ``upto``); returns the last seq sent."""
    sent = after
    while True:
        rows = await store.events_after(job_id, sent, limit=1000)
        rows = [r for r in rows if upto is None or r.seq <= upto]
        if not rows:
            return sent
        await _write(resp, [registry.frame(ev) for ev in rows])
        sent = rows[-1].seq


async def _write(resp: EventSourceResponse, chunks: list[bytes]) -> None:
    # No per-write timeout: a stalled reader is cut by the heartbeat's send timeout (it aborts the
    # transport, which fails this write too) and by TCP_USER_TIMEOUT, which aiohttp-sse sets.
    if chunks:
        await resp.write(b"".join(chunks))
        chunks.clear()


def encode_frame(ev: EventRow) -> bytes:
    data = json.dumps(event_data(ev), separators=(",", ":"))  # compact JSON has no newlines
    return f"id: {ev.seq}\r\nevent: {ev.type}\r\ndata: {data}\r\n\r\n".encode()
