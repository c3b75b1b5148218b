// The backlog tree: epics → features → stories → tasks and test cases, rendered from the BacklogModel.
// Nodes are kept by item id and updated in place (title, state badge, ADO link, totals, match), so live
// events never re-render the tree. Rows are keyboard-navigable; a row opens the item's detail pane.

import { el, KIND_NAMES, statusLabel } from "./api.js";

const BRANCH = new Set(["epic", "feature", "story"]);
const QA = new Set(["test_plan", "test_suite"]);
const TOTALS = new Set(["epic", "feature"]);

export class BacklogTree {
  // onOpen(id): a row was chosen (click on its title, or Enter)
  constructor(root, qaRoot, qaHeading, model, onOpen) {
    this.root = root;
    this.qaRoot = qaRoot;
    this.qaHeading = qaHeading;
    this.model = model;
    this.onOpen = onOpen;
    this.nodes = new Map();
    this.hidden = new Set(); // ids hidden by the current filter
    this.selected = null;
    root.addEventListener("click", (e) => this.click(e));
    qaRoot.addEventListener("click", (e) => this.click(e));
    root.addEventListener("keydown", (e) => this.key(e));
  }

  clear() {
    this.root.replaceChildren();
    this.qaRoot.replaceChildren();
    this.qaHeading.hidden = true;
    this.nodes.clear();
    this.hidden.clear();
    this.selected = null;
  }

  // Show what the model holds: create what is new (in order), update the rest, drop what is gone.
  sync(gone = []) {
    for (const id of gone) this.drop(id);
    const place = (id, container) => {
      const item = this.model.items.get(id);
      if (!item) return;
      const node = this.nodes.get(id) || this.create(item);
      if (node.li.parentElement !== container) container.append(node.li);
      this.update(id);
      for (const child of item.children) place(child, node.children || container);
    };
    for (const id of this.model.roots) place(id, this.root);
    for (const item of this.model.items.values()) {
      if (QA.has(item.kind)) place(item.id, this.qaRoot);
    }
    this.updateTotals();
  }

  // One item (from a live event): placed under its parent once the parent is shown.
  show(id) {
    const item = this.model.items.get(id);
    if (!item) return;
    let node = this.nodes.get(id);
    if (!node) {
      const container = QA.has(item.kind) ? this.qaRoot : item.parentId ? this.nodes.get(item.parentId)?.children : this.root;
      if (!container) return; // its parent arrives later; sync() places it then
      node = this.create(item);
      container.append(node.li);
      for (const child of item.children) this.show(child);
    }
    this.update(id);
  }

  create(item) {
    const kind = item.kind;
    if (QA.has(kind)) this.qaHeading.hidden = false;
    const title = el("span", { class: "title" });
    const badge = el("span", { class: "badge held", text: "not uploaded" });
    const match = el("span", { class: "tag match", hidden: true });
    const totals = TOTALS.has(kind) ? el("span", { class: "totals" }) : null;
    const link = el("a", { class: "ado-link", target: "_blank", rel: "noopener", hidden: true });
    const err = el("span", { class: "err", hidden: true });
    const line = el("span", { class: "node" },
      el("span", { class: "kind", text: KIND_NAMES[kind] || kind }), title, totals, match, badge, link, err);
    const li = el("li", { id: `item-${item.id}`, "data-kind": kind, "data-id": item.id });
    let children = null;
    if (BRANCH.has(kind)) {
      children = el("ul", { role: "group" });
      const summary = el("summary", { class: "row", "data-id": item.id }, line);
      li.append(el("details", {}, summary, children));
    } else {
      line.classList.add("leaf", "row");
      line.dataset.id = item.id;
      line.tabIndex = 0;
      li.append(line);
    }
    const node = { li, title, badge, match, totals, link, err, children, kind };
    this.nodes.set(item.id, node);
    return node;
  }

  update(id) {
    const node = this.nodes.get(id);
    const item = this.model.items.get(id);
    if (!node || !item) return;
    if (node.title.textContent !== item.title) node.title.textContent = item.title;
    const m = item.data.match;
    node.match.hidden = !m;
    if (m) { node.match.textContent = m; node.match.className = `tag match ${m}`; }
    this.setUpload(id, item.data.upload || {}, item.data.conflict);
  }

  setUpload(id, upload, conflict) {
    const node = this.nodes.get(id);
    if (!node) return;
    const state = conflict && upload.state !== "uploaded" ? "conflict" : upload.state || "held";
    const label = state === "held" ? "not uploaded" : statusLabel(state);
    if (node.badge.textContent !== label) {
      node.badge.textContent = label;
      node.badge.className = `badge ${state}`;
    }
    const adoId = upload.ado_id ?? upload.adoId;
    if (upload.url && adoId) {
      node.link.href = upload.url;
      node.link.textContent = `#${adoId}`;
      node.link.setAttribute("aria-label", `Open work item ${adoId} in Azure DevOps`);
      node.link.hidden = false;
    }
    const error = state === "uploaded" ? "" : upload.error || "";
    node.err.textContent = error;
    node.err.hidden = !error;
  }

  drop(id) {
    const node = this.nodes.get(id);
    if (!node) return;
    node.li.remove();
    for (const li of node.li.querySelectorAll("li[data-id]")) this.nodes.delete(li.dataset.id);
    this.nodes.delete(id);
    if (this.selected === id) this.selected = null;
  }

  updateTotals() {
    for (const [id, node] of this.nodes) {
      if (!node.totals) continue;
      const t = this.model.totals(id);
      const text = `${t.items} items · ${t.points} pts · ${+t.hours.toFixed(1)} h`;
      if (node.totals.textContent !== text) node.totals.textContent = text;
    }
  }

  // Show only the matches and their ancestors (opened); null shows everything again.
  filter(matches) {
    for (const id of this.hidden) { const n = this.nodes.get(id); if (n) n.li.hidden = false; }
    this.hidden.clear();
    if (!matches) return;
    const keep = new Set(matches);
    for (const id of matches) for (const a of this.model.ancestors(id)) keep.add(a);
    for (const [id, node] of this.nodes) {
      if (QA.has(node.kind) || keep.has(id)) continue;
      node.li.hidden = true;
      this.hidden.add(id);
    }
    for (const id of keep) {
      if (matches.has(id)) continue;
      const details = this.nodes.get(id)?.li.firstElementChild;
      if (details && details.tagName === "DETAILS") details.open = true;
    }
  }

  setOpen(open) {
    for (const details of this.root.querySelectorAll("details")) details.open = open;
  }

  select(id) {
    if (this.selected) this.nodes.get(this.selected)?.li.classList.remove("selected");
    this.selected = id;
    const node = this.nodes.get(id);
    if (!node) return;
    node.li.classList.add("selected");
    for (const a of this.model.ancestors(id)) {
      const details = this.nodes.get(a)?.li.firstElementChild;
      if (details) details.open = true;
    }
  }

  rowOf(id) {
    const li = this.nodes.get(id)?.li;
    return li?.querySelector(":scope > details > summary, :scope > .row");
  }

  click(e) {
    if (e.target.closest("a")) return; // the ADO link opens the work item
    const row = e.target.closest(".row");
    if (!row) return;
    // the title (or anywhere on a leaf) opens the pane; the rest of a summary folds it
    if (e.target.closest(".title") || !row.matches("summary")) {
      e.preventDefault();
      this.onOpen(row.dataset.id);
    }
  }

  // Arrows or j/k move between visible rows, Enter opens, → and ← unfold and fold.
  key(e) {
    const row = e.target.closest?.(".row");
    if (!row || e.altKey || e.ctrlKey || e.metaKey) return;
    const rows = () => [...this.root.querySelectorAll(".row")].filter((r) => r.offsetParent !== null);
    const move = (step) => {
      const all = rows();
      const next = all[all.indexOf(row) + step];
      if (next) next.focus();
    };
    const details = row.matches("summary") ? row.parentElement : null;
    if (e.key === "ArrowDown" || e.key === "j") move(1);
    else if (e.key === "ArrowUp" || e.key === "k") move(-1);
    else if (e.key === "Enter") this.onOpen(row.dataset.id);
    else if (e.key === "ArrowRight" && details) details.open = true;
    else if (e.key === "ArrowLeft" && details?.open) details.open = false;
    else if (e.key === "ArrowLeft") this.rowOf(this.model.items.get(row.dataset.id)?.parentId)?.focus();
    else return;
    e.preventDefault();
  }
}
