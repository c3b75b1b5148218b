// Live progress for one job: EventSource first; when the stream fails, poll the progress endpoint
// with If-None-Match (304 while nothing changed) and keep trying to get the stream back.

import { api, TERMINAL } from "./api.js";

const TYPES = ["progress", "item", "upload", "stage", "final", "error", "shutdown"];
const POLL_MS = 1000;
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
    this.etag = null;
    this.stopped = false;
    this.terminal = false;
  }

  start() {
    if (window.EventSource) this.openStream();
    else this.startPolling();
  }

  stop() {
    this.stopped = true;
    this.closeStream();
    clearTimeout(this.pollTimer);
    clearTimeout(this.recoverTimer);
  }

  openStream() {
    if (this.stopped) return;
    this.closeStream();
    const es = new EventSource(`/api/progress/stream/${this.jobId}?lastEventId=${this.lastId}`);
    this.es = es;
    es.onopen = () => {
      this.stopPolling();
      this.h.onMode("live");
    };
    es.onerror = () => {
      if (this.es !== es) return;
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
    if (type === "final") {
      this.closeStream();
      this.startPolling(); // picks up anything committed just after final, stops once terminal
    }
  }

  // ----- polling fallback ------------------------------------------------------------------
  startPolling() {
    if (this.stopped || this.pollTimer) return;
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
        return true;
      }
      if (!this.es) this.h.onMode("polling");
    } catch {
      this.h.onMode("offline — retrying");
    }
    return false;
  }

  recover() {
    if (this.stopped || this.es) return;
    this.openStream(); // if it opens, onopen stops the polling
    this.recoverTimer = setTimeout(() => this.recover(), RECOVER_MS);
  }
}
