// The jobs list: polled with If-None-Match (304 while nothing changed), rows updated in place.

import { api, el, statusLabel } from "./api.js";

const POLL_MS = 2000;

export class JobsList {
  constructor(list, empty) {
    this.list = list;
    this.empty = empty;
    this.rows = new Map();
    this.etag = null;
    this.timer = null;
  }

  start() {
    if (this.timer) return;
    const tick = async () => {
      await this.refresh();
      this.timer = setTimeout(tick, POLL_MS);
    };
    this.timer = setTimeout(tick, 0);
  }

  stop() {
    clearTimeout(this.timer);
    this.timer = null;
  }

  async refresh() {
    try {
      const res = await api("/api/jobs", { etag: this.etag });
      if (res.status === 304) return;
      this.etag = res.etag;
      this.render(res.data.jobs);
    } catch { /* try again next tick */ }
  }

  render(jobs) {
    const seen = new Set();
    let previous = null;
    for (const job of jobs) {
      seen.add(job.job_id);
      const row = this.rows.get(job.job_id) || this.create(job);
      if (row.badge.textContent !== statusLabel(job.status)) {
        row.badge.textContent = statusLabel(job.status);
        row.badge.className = `badge ${job.status}`;
      }
      const expected = previous ? previous.nextSibling : this.list.firstChild;
      if (expected !== row.li) this.list.insertBefore(row.li, expected); // keep newest first
      previous = row.li;
    }
    for (const [id, row] of this.rows) {
      if (!seen.has(id)) { row.li.remove(); this.rows.delete(id); }
    }
    this.empty.hidden = jobs.length > 0;
  }

  create(job) {
    const badge = el("span", { class: `badge ${job.status}` });
    const when = new Date(job.created_at * 1000).toLocaleString();
    const li = el("li", { "data-job": job.job_id },
      el("span", {}, el("a", { href: `#/jobs/${job.job_id}`, text: job.title }), " ",
        el("span", { class: "when", text: when })),
      badge);
    const row = { li, badge };
    this.rows.set(job.job_id, row);
    return row;
  }
}
