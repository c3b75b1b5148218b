// Where the product owner works on a job's backlog: the model, the tree, the detail pane, search and
// filters, traceability, and the review box. Live `item`, `upload` and `edit` events and API answers
// all land here and update the model first, then what shows it.

import { api, el } from "./api.js";
import { BacklogModel } from "./model.js";
import { ItemPane } from "./pane.js";
import { setupSearch } from "./search.js";
import { TraceView } from "./trace.js";
import { BacklogTree } from "./tree.js";

const $ = (id) => document.getElementById(id);
const QA = new Set(["test_plan", "test_suite"]);

export class Workspace {
  // hooks: jobId(), resync(), upload(epicIds)
  constructor(hooks) {
    this.hooks = hooks;
    this.model = new BacklogModel();
    this.histories = new Map(); // item id -> edit events seen by this page
    this.tree = new BacklogTree($("tree"), $("qa-list"), $("qa-heading"), this.model, (id) => this.openItem(id));
    this.pane = new ItemPane(this.model, {
      jobId: hooks.jobId,
      onItem: (item) => this.applyItem(item),
      onRemoved: (ids) => this.removeItems(ids),
      onResync: () => hooks.resync(),
      onClosed: (id) => this.tree.rowOf(id)?.focus(),
      history: (id) => this.histories.get(id) || [],
    });
    this.trace = new TraceView($("trace-view"), $("trace-list"), $("trace-summary"), this.model, (id) => this.openItem(id));
    this.filters = setupSearch(this.model, this.tree);
    $("expand-all").addEventListener("click", () => this.tree.setOpen(true));
    $("collapse-all").addEventListener("click", () => this.tree.setOpen(false));
    $("upload-all").addEventListener("click", () => hooks.upload(null));
    $("review-epics").addEventListener("click", (e) => {
      const b = e.target.closest("button[data-epic]");
      if (b) hooks.upload([b.dataset.epic]);
    });
    document.addEventListener("keydown", (e) => this.key(e));
  }

  clear() {
    this.pane.close();
    this.model.clear();
    this.tree.clear();
    this.histories.clear();
    this.filters.reset(); // a new job starts unfiltered
  }

  // A GET /backlog answer: the truth for every item (what vanished goes).
  load(backlog) {
    const gone = this.model.load(backlog);
    this.tree.sync(gone);
    this.changed();
  }

  changed(id) {
    this.tree.updateTotals();
    this.trace.update();
    if (this.tree.hidden.size || $("search-count").textContent) this.filters.apply();
    this.pane.refresh(id);
    this.reviewEpics();
  }

  // ----- live events --------------------------------------------------------------------------
  onItemEvent(data) {
    this.model.put({ id: data.id, type: data.kind, title: data.title, sources: data.sources }, data.parent_id);
    this.tree.show(data.id);
    if (data.kind === "epic") this.reviewEpics();
    this.soon();
  }

  // Totals and traceability once per frame while items stream in, not once per item.
  soon() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = null;
      this.tree.updateTotals();
      this.trace.update();
    });
  }

  onUploadEvent(data) {
    const upload = { state: data.state, error: data.error ?? null };
    if (data.ado_id ?? data.adoId) upload.ado_id = data.ado_id ?? data.adoId;
    if (data.url) upload.url = data.url;
    if (data.rev !== undefined) upload.rev = data.rev;
    if (!this.model.items.has(data.id)) {
      if (!QA.has(data.kind)) return; // its item event (or the next resync) brings it
      this.model.put({ id: data.id, type: data.kind, title: data.title }, null);
    }
    this.model.setUpload(data.id, upload);
    if (data.state === "uploaded") this.model.items.get(data.id).data.conflict = null;
    this.tree.show(data.id);
    this.pane.refresh(data.id);
  }

  // An `edit` event: {change, item_id, item, removed, author, at, fields}.
  onEditEvent(ev) {
    const list = this.histories.get(ev.item_id) || [];
    if (!list.some((e) => e.at === ev.at && e.change === ev.change)) list.push(ev);
    this.histories.set(ev.item_id, list);
    if (ev.removed?.length) this.removeItems(ev.removed);
    if (ev.item) this.applyItem(ev.item);
    if (ev.change === "regenerated") this.hooks.resync(); // the new children come with the backlog
  }

  applyItem(node) {
    const known = this.model.items.has(node.id);
    const item = this.model.merge(node);
    if (!known && item.parentId && !this.model.items.has(item.parentId)) { this.hooks.resync(); return; }
    if (!known && !item.parentId && !QA.has(item.kind) && item.kind !== "epic") { this.hooks.resync(); return; }
    this.tree.sync();
    this.changed(node.id);
  }

  removeItems(ids) {
    for (const id of ids) {
      for (const r of this.model.remove(id)) this.tree.drop(r);
    }
    this.changed();
  }

  openItem(id) {
    if (!this.model.items.has(id)) return;
    this.tree.select(id);
    this.pane.open(id);
  }

  // ----- review --------------------------------------------------------------------------------
  setReview(on) {
    $("review-box").hidden = !on;
    this.reviewing = on;
    this.reviewEpics();
  }

  reviewEpics() {
    if (!this.reviewing) return;
    const list = $("review-epics");
    const rows = this.model.roots.map((id) => {
      const epic = this.model.items.get(id);
      const state = epic?.data.upload?.state || "held";
      return el("li", {}, el("span", { text: epic?.title || id }), " ",
        state === "held" ? el("button", { type: "button", "data-epic": id, text: "Upload this epic" }) : el("span", { class: `badge ${state}`, text: state }));
    });
    list.replaceChildren(...rows);
  }

  // / focuses the search, Esc closes the pane (focus back on its row).
  key(e) {
    if ($("job-view").hidden) return;
    const typing = e.target.closest?.("input, textarea, select");
    if (e.key === "/" && !typing) { e.preventDefault(); $("search-text").focus(); }
    else if (e.key === "Escape" && this.pane.isOpen) { e.preventDefault(); this.pane.close(); }
  }

  async uploadEpics(epicIds) {
    const body = epicIds ? { epic_ids: epicIds } : {};
    return api(`/api/jobs/${this.hooks.jobId()}/upload`, { method: "POST", body });
  }
}
