// One job: status, progress bar, counts, live feed and actions; the backlog itself (tree, pane, search,
// review) is the Workspace's. Every update changes existing nodes in place; nothing is re-rendered wholesale.

import { api, el, KIND_NAMES, statusLabel, TERMINAL } from "./api.js";
import { LiveProgress } from "./live.js";
import { QualityPanel } from "./quality.js";
import { Workspace } from "./workspace.js";

const $ = (id) => document.getElementById(id);
const KINDS = ["epic", "feature", "story", "task", "test_case", "test_plan", "test_suite"];
const FEED_MAX = 60;
const REVIEW_TEXT = "Ready for your review: nothing is uploaded until you press Upload";
const RESTING = new Set(["awaiting_review", "awaiting_upload", "needs_credentials"]);
const JOB_STATUSES = new Set(["queued", "running", "awaiting_upload", "awaiting_review", "needs_credentials", ...TERMINAL]);

export class JobPage {
  constructor() {
    this.work = new Workspace({
      jobId: () => this.jobId,
      resync: () => this.resync(),
      upload: (epicIds) => this.upload(epicIds),
    });
    this.quality = new QualityPanel($("quality-panel"), $("quality-body"), $("quality-short"), $("quality-summary"));
    this.live = null;
    this.jobId = null;
    this.percent = 0;
    this.counts = {};
    this.status = "";
    this.uploadMode = "";
    this.resyncing = null;
    this.buildCounts();
    $("retry-btn").addEventListener("click", () => this.act("retry-uploads", "Re-queued failed uploads"));
    $("upload-btn").addEventListener("click", () => this.act("upload", "Upload started"));
    $("cancel-btn").addEventListener("click", () => this.cancel());
  }

  buildCounts() {
    this.cells = {};
    const body = $("counts-body");
    for (const kind of KINDS) {
      const cells = ["generated", "uploaded", "failed"].map((k) => el("td", { "data-count": k, text: "0" }));
      body.append(el("tr", { id: `count-${kind}` }, el("th", { scope: "row", text: KIND_NAMES[kind] }), ...cells));
      this.cells[kind] = { generated: cells[0], uploaded: cells[1], failed: cells[2] };
    }
  }

  async open(jobId) {
    this.close();
    this.jobId = jobId;
    this.percent = 0;
    this.statusSeq = 0;
    this.work.clear();
    this.work.setReview(false);
    this.quality.clear();
    $("feed").replaceChildren();
    $("action-msg").textContent = "";
    for (const fmt of ["json", "csv", "md"]) $(`export-${fmt}`).href = `/api/jobs/${jobId}/export?format=${fmt}`;
    try {
      // All three at once; the backlog may be read before the progress: then it is re-read below.
      const [job, progress, backlog] = (await Promise.all(
        [`/api/jobs/${jobId}`, `/api/jobs/${jobId}/progress`, `/api/jobs/${jobId}/backlog`].map((u) => api(u)),
      )).map((r) => r.data);
      $("job-title").textContent = job.title;
      document.title = `${job.title} — backlogd`;
      this.uploadMode = job.upload_mode;
      this.target = job.target;
      if (this.jobId !== jobId) return;
      this.work.load(backlog);
      this.applySnapshot(progress);
      if (TERMINAL.has(progress.status)) { this.setMode("finished"); this.quality.load(jobId); }
      // a finished job is watched too (slow poll, replay on change): other pages may edit it
      this.follow(backlog.last_seq, TERMINAL.has(progress.status));
      if (backlog.last_seq < progress.last_event_id) this.resync(); // the job moved between the reads
    } catch (err) {
      $("job-title").textContent = "Job not available";
      this.showError(err.message);
    }
  }

  close() {
    if (this.live) this.live.stop();
    this.live = null;
    this.jobId = null;
  }

  setMode(mode) {
    $("live-mode").textContent = mode === "live" ? "● live" : mode;
    $("live-mode").dataset.mode = mode;
  }

  onEvent(type, data, seq) {
    // An in-memory progress tick can be committed after the job's final event: its status is not the
    // job's. The job's status comes only from stage/final events and GET /progress (the store).
    if (type === "progress") this.applySnapshot({ ...data, status: undefined });
    else if (type === "item") {
      this.work.onItemEvent(data);
      this.feed(`${KIND_NAMES[data.kind] || data.kind} generated: ${data.title}`);
    } else if (type === "upload") {
      this.work.onUploadEvent(data);
      const rev = data.rev && data.rev > 1 ? ` (rev ${data.rev})` : "";
      const what = data.state === "uploaded" ? `uploaded as #${data.ado_id ?? data.adoId}${rev}` : statusLabel(data.state);
      this.feed(`${KIND_NAMES[data.kind] || data.kind} ${what}: ${data.title}${data.error ? ` — ${data.error}` : ""}`);
    } else if (type === "edit") {
      this.work.onEditEvent(data);
      const title = data.item?.title || data.item_id;
      this.feed(`${data.author || "someone"} ${data.change} ${title}${data.fields?.length ? ` (${data.fields.join(", ")})` : ""}`);
    } else if (type === "stage") {
      if (JOB_STATUSES.has(data.status)) this.setStatus(data.status, seq); // "started" is a stage's, not the job's
      // generation is over and the job rests (review, manual upload): the full items come with the backlog
      if (RESTING.has(data.status)) this.resync();
      if (data.stage) this.feed(`Stage ${data.stage} ${data.status || ""}${data.agent ? ` (${data.agent})` : ""}`);
      if (data.status === "running" && TERMINAL.has(this.status)) this.percent = 0;
    } else if (type === "error") {
      this.feed(`Problem in ${data.stage || "job"}: ${data.message}`);
    } else if (type === "final") {
      if (data.progress) this.applySnapshot({ ...data.progress, status: undefined });
      this.setStatus(data.status, seq);
      this.showError(data.error);
      this.feed(`Finished: ${statusLabel(data.status)}`);
      this.resync();
    }
  }

  applySnapshot(p) {
    if (!p) return;
    if (p.status) this.setStatus(p.status, p.last_event_id);
    this.percent = Math.max(this.percent, Number(p.progress) || 0); // never moves backwards on screen
    const pct = Math.round(this.percent);
    const fill = $("progress-fill");
    fill.style.width = `${this.percent}%`;
    fill.classList.toggle("done", pct >= 100);
    $("progress-bar").setAttribute("aria-valuenow", String(pct));
    const eta = p.eta_seconds && pct < 100 ? ` · about ${formatSeconds(p.eta_seconds)} left` : "";
    const agent = p.current_agent ? ` (${p.current_agent})` : "";
    const review = this.status === "awaiting_review";
    const text = review ? REVIEW_TEXT : `${pct}% — ${p.current_action || statusLabel(p.status)}${agent}${eta}`;
    if ($("progress-text").textContent !== text) $("progress-text").textContent = text;
    if (p.error !== undefined) this.showError(p.error);
    for (const kind of KINDS) {
      const c = p.counts?.[kind];
      if (!c) continue;
      for (const key of ["generated", "uploaded", "failed"]) {
        const cell = this.cells[kind][key];
        const value = String(c[key] ?? 0);
        if (cell.textContent !== value) cell.textContent = value;
      }
      this.counts[kind] = c;
    }
    this.updateActions();
  }

  // Statuses arrive from events and from snapshots fetched concurrently: a snapshot read before the
  // final event may answer after it. Each carries the event id it reflects; an older one is ignored.
  setStatus(status, seq) {
    if (!status) return;
    if (seq !== undefined && seq !== null) {
      if (seq < this.statusSeq) return;
      this.statusSeq = seq;
    }
    this.status = status;
    const badge = $("job-status");
    badge.textContent = statusLabel(status);
    badge.className = `badge ${status}`;
    if (status === "awaiting_review") $("progress-text").textContent = REVIEW_TEXT;
    this.updateActions();
  }

  updateActions() {
    const failed = Object.values(this.counts).reduce((n, c) => n + (c.failed || 0), 0);
    const running = this.status === "running" || this.status === "queued";
    $("retry-btn").hidden = !(failed > 0 && !running && this.target !== "none");
    $("upload-btn").hidden = !["awaiting_upload", "needs_credentials"].includes(this.status);
    this.work.setReview(this.status === "awaiting_review");
    $("pat-box").hidden = !(this.target === "ado" && ["needs_credentials", "completed_with_errors"].includes(this.status));
    $("cancel-btn").hidden = !running;
  }

  showError(message) {
    $("job-error").textContent = message || "";
    $("job-error").hidden = !message;
  }

  feed(text) {
    const list = $("feed");
    list.prepend(el("li", { text }));
    while (list.children.length > FEED_MAX) list.lastElementChild.remove();
  }

  // Re-read the backlog and progress and merge them in place (after polling or final).
  // A call during a re-read asks for one more after it: that re-read may have read before the change
  // that called (a regenerated subtree), and its event is already consumed.
  async resync() {
    if (!this.jobId) return null;
    if (this.resyncing) { this.resyncAgain = true; return this.resyncing; }
    const jobId = this.jobId;
    this.resyncing = (async () => {
      try {
        const backlog = (await api(`/api/jobs/${jobId}/backlog`)).data;
        if (this.jobId === jobId) this.work.load(backlog);
        const progress = (await api(`/api/jobs/${jobId}/progress`)).data;
        if (this.jobId === jobId) this.applySnapshot(progress);
        if (this.jobId === jobId && TERMINAL.has(progress.status)) await this.quality.load(jobId);
      } catch { /* the next poll or event tries again */ }
      this.resyncing = null;
      if (this.resyncAgain && this.jobId === jobId) { this.resyncAgain = false; this.resync(); }
    })();
    return this.resyncing;
  }

  async act(action, done) {
    const btn = action === "upload" ? $("upload-btn") : $("retry-btn");
    btn.disabled = true;
    try {
      const pat = $("job-pat").value.trim();
      const res = await api(`/api/jobs/${this.jobId}/${action}`, { method: "POST", body: pat ? { pat } : {} });
      $("job-pat").value = "";
      $("action-msg").textContent = action === "retry-uploads" ? `${done}: ${res.data.requeued} items` : done;
      this.setStatus("running");
      this.live?.wake();
    } catch (err) {
      $("action-msg").textContent = `Could not ${action.replace("-", " ")}: ${err.message}`;
    } finally {
      btn.disabled = false;
    }
  }

  // Review mode: upload the whole backlog (epicIds null) or those epics' subtrees.
  async upload(epicIds) {
    const buttons = document.querySelectorAll("#review-box button");
    for (const b of buttons) b.disabled = true;
    try {
      await this.work.uploadEpics(epicIds);
      $("action-msg").textContent = epicIds ? "Upload of the epic started" : "Upload started";
      if (!epicIds) this.setStatus("running");
      this.live?.wake();
    } catch (err) {
      $("action-msg").textContent = `Could not upload: ${err.message}`;
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  }

  follow(lastEventId, finished = false) {
    const live = new LiveProgress(this.jobId, lastEventId, {
      onEvent: (type, data, seq) => this.onEvent(type, data, seq),
      onSnapshot: (snap) => this.applySnapshot(snap),
      onMode: (mode) => this.setMode(mode),
      onResync: () => this.resync(),
      onFinished: () => {
        this.setMode("finished");
        this.resync();
      },
    });
    this.live = live;
    live.start(finished);
  }

  async cancel() {
    $("cancel-btn").disabled = true;
    try {
      await api(`/api/jobs/${this.jobId}`, { method: "DELETE" });
      $("action-msg").textContent = "Job cancelled";
    } catch (err) {
      $("action-msg").textContent = `Could not cancel: ${err.message}`;
    } finally {
      $("cancel-btn").disabled = false;
    }
  }
}

function formatSeconds(s) {
  if (s < 90) return `${Math.max(1, Math.round(s))} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}
