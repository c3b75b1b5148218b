// The backlog tree: epics → features → stories → tasks and test cases. Nodes are kept by item id
// and updated in place (state badge, ADO link, error), so live events never re-render the tree.

import { el, KIND_NAMES, statusLabel } from "./api.js";

const BRANCH = new Set(["epic", "feature", "story"]);

export class BacklogTree {
  constructor(root, qaRoot, qaHeading) {
    this.root = root;
    this.qaRoot = qaRoot;
    this.qaHeading = qaHeading;
    this.nodes = new Map();
    this.orphans = new Map(); // parentId -> [items] that arrived before their parent
  }

  clear() {
    this.root.replaceChildren();
    this.qaRoot.replaceChildren();
    this.qaHeading.hidden = true;
    this.nodes.clear();
    this.orphans.clear();
  }

  // Merge a GET /backlog answer into what is shown (adds what is new, updates the rest).
  load(backlog) {
    const walk = (node, parentId) => {
      this.upsert({ id: node.id, kind: node.type, title: node.title, parentId }, node.upload);
      for (const key of ["features", "stories", "tasks", "test_cases"]) {
        for (const child of node[key] || []) walk(child, node.id);
      }
    };
    for (const epic of backlog.epics || []) walk(epic, null);
    for (const qa of backlog.test_plans || []) this.upsert({ id: qa.id, kind: qa.type, title: qa.title, parentId: null }, qa.upload);
  }

  upsert(item, upload) {
    let node = this.nodes.get(item.id);
    if (!node) node = this.create(item);
    if (!node) return;
    if (upload) this.setUpload(item.id, upload);
  }

  create(item) {
    const kind = item.kind;
    const isQa = kind === "test_plan" || kind === "test_suite";
    let container;
    if (isQa) {
      container = this.qaRoot;
      this.qaHeading.hidden = false;
    } else if (item.parentId) {
      const parent = this.nodes.get(item.parentId);
      if (!parent) {
        const waiting = this.orphans.get(item.parentId) || [];
        waiting.push(item);
        this.orphans.set(item.parentId, waiting);
        return null;
      }
      container = parent.children;
    } else {
      container = this.root;
    }
    const badge = el("span", { class: "badge held", text: "not uploaded" });
    const link = el("a", { class: "ado-link", target: "_blank", rel: "noopener", hidden: true });
    const err = el("span", { class: "err", hidden: true });
    const line = el("span", { class: "node" },
      el("span", { class: "kind", text: KIND_NAMES[kind] || kind }),
      el("span", { class: "title", text: item.title }), badge, link, err);
    const li = el("li", { id: `item-${item.id}`, "data-kind": kind });
    let children = null;
    if (BRANCH.has(kind) && !isQa) {
      children = el("ul", { role: "group" });
      const details = el("details", {}, el("summary", {}, line), children);
      li.append(details);
    } else {
      line.classList.add("leaf");
      li.append(line);
    }
    container.append(li);
    const node = { li, badge, link, err, children, kind };
    this.nodes.set(item.id, node);
    for (const orphan of this.orphans.get(item.id) || []) this.create(orphan);
    this.orphans.delete(item.id);
    return node;
  }

  setUpload(id, upload) {
    const node = this.nodes.get(id);
    if (!node) return;
    const state = upload.state || "held";
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

  setOpen(open) {
    for (const details of this.root.querySelectorAll("details")) details.open = open;
  }
}
