// Live progress for one job: EventSource first; when the stream fails, poll the progress endpoint
// with If-None-Match (304 while nothing changed) and keep trying to get the stream back. Once the job
// is finished the stream closes after `final`, but others may still edit its backlog: a slow poll
// (WATCH_MS) watches the ETag and, when it moves, replays the new events through the stream.

import { api, TERMINAL } from "./api.js";

const TYPES = ["progress", "item", "upload", "stage", "final", "error", "edit", "shutdown"];
const POLL_MS = 1000;
const WATCH_MS = 2000;
const RECOVER_MS = 10000;

export class LiveProgress {
  // handlers: onEvent(type, data, seq), onSnapshot(progress), onMode(mode), onResync(), onFinished()
  constructor(jobId, lastEventId, handlers) {
    this.jobId = jobId;
    this.lastId = lastEventId || 0;
    this.h = handlers;
    this.es = null;
    this.pollTimer = null;
    this.recoverTimer = null;
    this.watchTimer = null;
    this.etag = null;
    this.stopped = false;
    this.terminal = false;
    this.watching = false;
  }

  // finished: the job was already over when the page opened it; watch instead of streaming.
  start(finished = false) {
    if (finished) { this.terminal = true; this.watch(); return; }
    if (window.EventSource) this.openStream();
    else this.startPolling();
  }

  stop() {
    this.stopped = true;
    this.closeStream();
    clearTimeout(this.pollTimer);
    clearTimeout(this.recoverTimer);
    clearTimeout(this.watchTimer);
  }

  // Something was just asked of the server (upload, retry): look now rather than at the next tick.
  wake() {
    if (this.watching) { clearTimeout(this.watchTimer); this.watchTimer = setTimeout(() => this.watchTick(), 0); }
  }

  openStream() {
    if (this.stopped) return;
    this.closeStream();
    const es = new EventSource(`/api/progress/stream/${this.jobId}?lastEventId=${this.lastId}`);
    this.es = es;
    es.onopen = () => {
      if (this.watching) return;
      this.stopPolling();
      this.h.onMode("live");
    };
    es.onerror = () => {
      if (this.es !== es) return;
      if (this.watching) { this.closeStream(); return; } // a replay ends with the server closing it
      if (es.readyState === EventSource.CLOSED) {
        // 204 (finished, nothing missed), 404 (streaming disabled) or another refusal: poll instead.
        this.closeStream();
        this.startPolling();
      } else {
        this.h.onMode("reconnecting");
        this.startPolling(); // keep the page moving while the browser reconnects
      }
    };
    for (const type of TYPES) es.addEventListener(type, (e) => this.receive(type, e));
  }

  closeStream() {
    if (this.es) { this.es.close(); this.es = null; }
  }

  receive(type, e) {
    const seq = Number(e.lastEventId || 0);
    if (type !== "shutdown") {
      if (seq && seq <= this.lastId) return; // already seen (replayed after a reconnect)
      if (seq) this.lastId = seq;
    }
    let data = {};
    try { data = JSON.parse(e.data); } catch { /* keep {} */ }
    if (type === "shutdown") { this.h.onMode("server restarting"); return; } // the browser reconnects
    this.h.onEvent(type, data, seq);
    if (type === "final" && !this.watching) {
      this.closeStream();
      this.startPolling(); // picks up anything committed just after final, then watches
    }
  }

  // ----- polling fallback ------------------------------------------------------------------
  startPolling() {
    if (this.stopped || this.pollTimer || this.watching) return;
    if (!this.es) this.h.onMode("polling");
    this.pollTimer = setTimeout(() => this.pollLoop(), 0);
    clearTimeout(this.recoverTimer);
    this.recoverTimer = setTimeout(() => this.recover(), RECOVER_MS);
  }

  stopPolling() {
    clearTimeout(this.pollTimer);
    clearTimeout(this.recoverTimer);
    this.pollTimer = null;
    this.recoverTimer = null;
  }

  async pollLoop() {
    const finished = await this.pollOnce();
    if (this.stopped || finished || !this.pollTimer) { this.pollTimer = null; return; }
    this.pollTimer = setTimeout(() => this.pollLoop(), POLL_MS);
  }

  async pollOnce() {
    try {
      const res = await api(`/api/jobs/${this.jobId}/progress`, { etag: this.etag });
      if (res.status === 200) {
        this.etag = res.etag;
        this.terminal = TERMINAL.has(res.data.status);
        this.h.onSnapshot(res.data);
        if (res.data.last_event_id > this.lastId) {
          this.lastId = res.data.last_event_id;
          this.h.onResync();
        }
      }
      if (this.terminal) {
        this.stopPolling();
        this.closeStream();
        this.h.onFinished();
        this.watch();
        return true;
      }
      if (!this.es) this.h.onMode("polling");
    } catch {
      this.h.onMode("offline — retrying");
    }
    return false;
  }

  recover() {
    if (this.stopped || this.es || this.watching) return;
    this.openStream(); // if it opens, onopen stops the polling
    this.recoverTimer = setTimeout(() => this.recover(), RECOVER_MS);
  }

  // ----- a finished job: slow ETag poll, replay through the stream when it moves ----------------
  watch() {
    if (this.stopped) return;
    this.watching = true;
    clearTimeout(this.watchTimer);
    this.watchTimer = setTimeout(() => this.watchTick(), WATCH_MS);
  }

  async watchTick() {
    if (this.stopped || !this.watching) return;
    try {
      const res = await api(`/api/jobs/${this.jobId}/progress`, { etag: this.etag });
      if (res.status === 200) {
        this.etag = res.etag;
        this.h.onSnapshot(res.data);
        if (!TERMINAL.has(res.data.status)) { // running again (retry, upload): follow it live
          this.watching = false;
          this.terminal = false;
          if (window.EventSource) this.openStream(); else this.startPolling();
          return;
        }
        if (res.data.last_event_id > this.lastId && window.EventSource && !this.es) this.openStream();
        else if (res.data.last_event_id > this.lastId) { this.lastId = res.data.last_event_id; this.h.onResync(); }
      }
    } catch { /* offline: the next tick tries again */ }
    if (!this.stopped && this.watching) this.watchTimer = setTimeout(() => this.watchTick(), WATCH_MS);
  }
}
