// The job's backlog as data: items by id with their parent and children in order, totals per branch,
// the vision sentences, and the search. The tree and the pane render from it; nothing here touches the DOM.

export const CHILD_KEYS = ["features", "stories", "tasks", "test_cases"];
export const CHILD_KINDS = { epic: ["feature"], feature: ["story"], story: ["task", "test_case"] };
const QA_KINDS = new Set(["test_plan", "test_suite"]);

export class BacklogModel {
  constructor() {
    this.items = new Map(); // id -> {id, kind, title, parentId, children: [ids], data}
    this.roots = [];
    this.sentences = new Map(); // sentence id -> {id, text, covered_by}
    this.orphans = new Map(); // parent id -> ids that arrived (live) before their parent
  }

  clear() {
    this.items.clear();
    this.orphans.clear();
    this.roots = [];
    this.sentences.clear();
  }

  // Take a GET /backlog answer as the truth; returns the ids that are gone from it.
  load(backlog) {
    const seen = new Set();
    const walk = (node, parentId) => {
      seen.add(node.id);
      this.put(node, parentId);
      for (const key of CHILD_KEYS) for (const child of node[key] || []) walk(child, node.id);
    };
    for (const epic of backlog.epics || []) walk(epic, null);
    for (const qa of backlog.test_plans || []) { seen.add(qa.id); this.put(qa, null); }
    this.roots = (backlog.epics || []).map((e) => e.id);
    if (backlog.sentences) this.sentences = new Map(backlog.sentences.map((s) => [s.id, s]));
    const gone = [...this.items.keys()].filter((id) => !seen.has(id));
    for (const id of gone) this.items.delete(id);
    for (const item of this.items.values()) item.children = item.children.filter((c) => seen.has(c));
    return gone;
  }

  // One item as in GET /backlog (nested children included); parentId null keeps the one known.
  put(node, parentId) {
    const data = { ...node };
    const kids = [];
    for (const key of CHILD_KEYS) {
      if (!(key in node)) continue;
      delete data[key];
      for (const child of node[key] || []) kids.push(child.id);
    }
    const old = this.items.get(node.id);
    const kind = node.type || node.kind || old?.kind;
    const item = {
      id: node.id, kind, title: node.title ?? old?.title ?? "",
      parentId: parentId ?? node.parent_id ?? old?.parentId ?? null,
      children: kids.length || CHILD_KEYS.some((k) => k in node) ? kids : old?.children || [],
      data: { ...(old?.data || {}), ...data },
    };
    item.haystack = `${item.title}\n${item.data.description || ""}`.toLowerCase();
    this.items.set(node.id, item);
    if (!old && this.orphans.has(node.id)) {
      for (const c of this.orphans.get(node.id)) if (!item.children.includes(c)) item.children.push(c);
      this.orphans.delete(node.id);
    }
    if (item.parentId) {
      const parent = this.items.get(item.parentId);
      if (parent && !parent.children.includes(item.id)) parent.children.push(item.id);
      if (!parent) this.orphans.set(item.parentId, [...(this.orphans.get(item.parentId) || []), item.id]);
    } else if (kind === "epic" && !this.roots.includes(item.id)) {
      this.roots.push(item.id);
    }
    return item;
  }

  // Merge an edited/added/regenerated item (with its subtree) from an edit event or an API answer.
  merge(node) {
    const walk = (n, parentId) => {
      this.put(n, parentId);
      for (const key of CHILD_KEYS) for (const child of n[key] || []) walk(child, n.id);
    };
    walk(node, node.parent_id ?? null);
    return this.items.get(node.id);
  }

  setUpload(id, upload) {
    const item = this.items.get(id);
    if (!item) return null;
    item.data.upload = { ...(item.data.upload || {}), ...upload };
    return item;
  }

  // Remove an item and its subtree; returns every id removed.
  remove(id) {
    const item = this.items.get(id);
    if (!item) return [];
    const removed = [];
    const walk = (i) => { removed.push(i); for (const c of this.items.get(i)?.children || []) walk(c); };
    walk(id);
    for (const r of removed) this.items.delete(r);
    const parent = item.parentId && this.items.get(item.parentId);
    if (parent) parent.children = parent.children.filter((c) => c !== id);
    this.roots = this.roots.filter((r) => r !== id);
    return removed;
  }

  descendants(id) {
    const out = [];
    const walk = (i) => { for (const c of this.items.get(i)?.children || []) { out.push(c); walk(c); } };
    walk(id);
    return out;
  }

  // Items, story points and task hours under an epic or feature.
  totals(id) {
    let items = 0, points = 0, hours = 0;
    for (const d of this.descendants(id)) {
      const data = this.items.get(d)?.data || {};
      items += 1;
      points += Number(data.story_points) || 0;
      hours += Number(data.estimate_hours) || 0;
    }
    return { items, points, hours };
  }

  ancestors(id) {
    const out = [];
    for (let p = this.items.get(id)?.parentId; p; p = this.items.get(p)?.parentId) out.push(p);
    return out;
  }

  // The ids matching a filter {text, kind, state, conflicts}; null when no filter is set.
  matches(filter) {
    const text = (filter.text || "").trim().toLowerCase();
    if (!text && !filter.kind && !filter.state && !filter.conflicts) return null;
    const out = new Set();
    for (const item of this.items.values()) {
      if (QA_KINDS.has(item.kind)) continue;
      const state = item.data.upload?.state || "held";
      if (text && !item.haystack.includes(text)) continue;
      if (filter.kind && item.kind !== filter.kind) continue;
      if (filter.state && state !== filter.state) continue;
      if (filter.conflicts && state !== "conflict" && !item.data.conflict) continue;
      out.add(item.id);
    }
    return out;
  }

  // Vision sentences with the stories citing them, from the current items (edits move sources).
  traceability() {
    const covered = new Map([...this.sentences.keys()].map((id) => [id, []]));
    for (const item of this.items.values()) {
      if (item.kind !== "story") continue;
      for (const sid of item.data.sources || []) if (covered.has(sid)) covered.get(sid).push(item.id);
    }
    return [...this.sentences.values()].map((s) => ({ ...s, covered_by: covered.get(s.id) }));
  }
}
