// The item detail pane: fields, sources with the vision sentence text, upload state, conflict (ours vs
// theirs), history; and the edits: Edit (PATCH), Delete, Add child, Regenerate children, Keep mine/theirs.
// Every answer is applied at once through onItem/onRemoved; the `edit` events over SSE confirm it later.

import { api, el, KIND_NAMES, statusLabel } from "./api.js";
import { fieldView, FIELDS, itemForm, KIND_FIELDS } from "./itemform.js";
import { CHILD_KINDS } from "./model.js";

const $ = (id) => document.getElementById(id);

export class ItemPane {
  // hooks: jobId(), onItem(item), onRemoved(ids), onResync(), history(id) -> [edit events]
  constructor(model, hooks) {
    this.model = model;
    this.hooks = hooks;
    this.id = null;
    this.mode = "view";
    this.unsaved = new Map(); // item id -> the edit a conflict refused: "Keep mine" means mine with it
    this.root = $("pane");
    this.body = $("pane-body");
    $("pane-close").addEventListener("click", () => this.close());
  }

  get isOpen() { return !this.root.hidden; }

  open(id) {
    this.id = id;
    this.mode = "view";
    this.root.hidden = false;
    document.body.classList.add("pane-open");
    this.render();
    $("pane-title").focus();
  }

  close() {
    if (!this.isOpen) return;
    const id = this.id;
    this.root.hidden = true;
    this.id = null;
    document.body.classList.remove("pane-open");
    this.hooks.onClosed?.(id);
  }

  // The item changed (event or answer): redraw unless the user is typing in a form.
  refresh(id) {
    if (!this.isOpen || (id && id !== this.id)) return;
    if (!this.model.items.has(this.id)) { this.close(); return; }
    if (this.mode === "view") this.render();
  }

  render() {
    const item = this.model.items.get(this.id);
    if (!item) return;
    const d = item.data;
    $("pane-kind").textContent = KIND_NAMES[item.kind] || item.kind;
    $("pane-title").textContent = item.title;
    const sections = [this.actions(item)];
    if (d.conflict) sections.push(this.conflict(item));
    if (this.mode === "edit") sections.push(this.editForm(item));
    else if (this.mode === "add") sections.push(this.addForm(item));
    else if (this.mode === "regenerate") sections.push(this.regenerateForm(item));
    else if (this.mode === "delete") sections.push(this.deleteForm(item));
    else sections.push(fieldView(item.kind, d));
    sections.push(this.sources(d), this.upload(d), this.history(item));
    this.body.replaceChildren(...sections.filter(Boolean));
  }

  actions(item) {
    const button = (text, mode, cls) => {
      const b = el("button", { type: "button", class: cls, "data-action": mode, text });
      b.addEventListener("click", () => { this.mode = this.mode === mode ? "view" : mode; this.render(); this.focusForm(); });
      return b;
    };
    const canEdit = Boolean(KIND_FIELDS[item.kind]);
    const kids = CHILD_KINDS[item.kind];
    return el("div", { class: "pane-actions" },
      canEdit ? button("Edit", "edit") : null,
      kids ? button("Add child", "add") : null,
      kids ? button("Regenerate children…", "regenerate") : null,
      canEdit ? button("Delete", "delete", "danger") : null,
      el("p", { class: "hint pane-msg", id: "pane-msg", "aria-live": "polite" }));
  }

  focusForm() {
    this.body.querySelector("form input, form textarea, form select")?.focus();
  }

  url(suffix = "") {
    return `/api/jobs/${this.hooks.jobId()}/items${suffix}`;
  }

  // Run one request from a form: disable it, apply the answer, show errors next to the fields.
  async submit(form, showErrors, run) {
    const buttons = form.querySelectorAll("button");
    for (const b of buttons) b.disabled = true;
    try {
      await run();
      this.mode = "view";
      this.render();
    } catch (err) {
      if (err.status === 409 && err.body?.theirs) {
        // the item is now in conflict: show both versions (from the store) instead of the form
        const item = this.model.items.get(this.id);
        if (item) item.data.conflict = { ours: err.body.ours, theirs: err.body.theirs };
        if (this.lastEdit) this.unsaved.set(this.lastEdit.id, this.lastEdit.body);
        this.mode = "view";
        this.render();
        this.msg("Changed in Azure DevOps since our upload: nothing was overwritten. Choose a version.");
        this.hooks.onResync();
      } else {
        showErrors(err.message, err.details);
      }
    } finally {
      for (const b of buttons) b.disabled = false;
    }
  }

  editForm(item) {
    const f = itemForm(item.kind, item.data, "edit");
    const save = el("button", { type: "submit", class: "primary", text: "Save" });
    const cancel = el("button", { type: "button", text: "Cancel" });
    cancel.addEventListener("click", () => { this.mode = "view"; this.render(); });
    f.form.append(el("div", { class: "form-actions" }, save, cancel));
    f.form.addEventListener("submit", (e) => {
      e.preventDefault();
      const body = f.values(true);
      if (!Object.keys(body).length) { this.mode = "view"; this.render(); return; }
      this.lastEdit = { id: item.id, body };
      this.submit(f.form, f.showErrors, async () => {
        const res = await api(this.url(`/${item.id}`), { method: "PATCH", body });
        this.hooks.onItem(res.data);
      });
    });
    return f.form;
  }

  addForm(item) {
    const kinds = CHILD_KINDS[item.kind];
    const select = el("select", { id: "add-type", name: "type" }, ...kinds.map((k) => el("option", { value: k, text: KIND_NAMES[k] })));
    let f = itemForm(kinds[0], {}, "add", true);
    const holder = el("div", {}, f.form);
    select.addEventListener("change", () => { f = itemForm(select.value, {}, "add", true); holder.replaceChildren(f.form); });
    const save = el("button", { type: "submit", class: "primary", text: "Add" });
    const cancel = el("button", { type: "button", text: "Cancel" });
    cancel.addEventListener("click", () => { this.mode = "view"; this.render(); });
    const form = el("form", { class: "item-form", novalidate: true },
      el("label", { for: "add-type", text: "Type" }), select, holder, el("div", { class: "form-actions" }, save, cancel));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      const body = { parent_id: item.id, type: select.value, ...f.values(false) };
      this.submit(form, f.showErrors, async () => {
        const res = await api(this.url(), { method: "POST", body });
        this.hooks.onItem({ ...res.data, parent_id: res.data.parent_id ?? item.id });
        this.msg(`Added ${KIND_NAMES[select.value]}: ${res.data.title}`);
      });
    });
    return form;
  }

  regenerateForm(item) {
    const text = el("textarea", { id: "regen-instruction", rows: 3, placeholder: "split into smaller stories; add a test for offline mode" });
    const errors = el("div", { class: "errors", role: "alert", hidden: true });
    const show = (message) => { errors.textContent = message; errors.hidden = !message; };
    const go = el("button", { type: "submit", class: "primary", text: "Regenerate" });
    const form = el("form", { class: "item-form", novalidate: true }, errors,
      el("label", { for: "regen-instruction", text: `Replace the ${this.model.items.get(item.id).children.length} children, with this instruction` }),
      text, el("div", { class: "form-actions" }, go));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit(form, show, async () => {
        await api(this.url(`/${item.id}/regenerate`), { method: "POST", body: { instruction: text.value.trim() } });
        await this.hooks.onResync();
        this.msg("Children regenerated");
      });
    });
    return form;
  }

  deleteForm(item) {
    const count = this.model.descendants(item.id).length;
    const uploaded = Boolean(item.data.upload?.ado_id);
    const inAdo = el("input", { type: "checkbox", id: "delete-in-ado" });
    const errors = el("div", { class: "errors", role: "alert", hidden: true });
    const show = (message) => { errors.textContent = message; errors.hidden = !message; };
    const yes = el("button", { type: "submit", class: "danger", text: "Delete" });
    const form = el("form", { class: "item-form confirm", novalidate: true }, errors,
      el("p", { text: `Delete "${item.title}"${count ? ` and the ${count} items under it` : ""} from the backlog?` }),
      uploaded ? el("label", { class: "check" }, inAdo, " also close it in Azure DevOps") : null,
      el("div", { class: "form-actions" }, yes));
    form.addEventListener("submit", (e) => {
      e.preventDefault();
      this.submit(form, show, async () => {
        await api(this.url(`/${item.id}`), { method: "DELETE", query: inAdo.checked ? { in_ado: "true" } : undefined });
        this.hooks.onRemoved([item.id]);
      });
    });
    return form;
  }

  conflict(item) {
    const theirs = item.data.conflict.theirs || {};
    const mine = this.unsaved.get(item.id) || {};
    const ours = { ...(item.data.conflict.ours || {}), ...mine };
    const names = Object.keys(FIELDS).filter((n) => n in ours || n in theirs);
    const column = (label, side) => el("div", { class: "side" }, el("h4", { text: label }),
      el("dl", {}, ...names.flatMap((n) => [el("dt", { text: FIELDS[n].label }), el("dd", { class: "pre", text: text(side[n]) })])));
    const keep = (which, label) => {
      const b = el("button", { type: "button", "data-keep": which, text: label });
      b.addEventListener("click", async () => {
        b.disabled = true;
        try {
          let res = await api(this.url(`/${item.id}/resolve`), { method: "POST", body: { keep: which } });
          if (which === "ours" && Object.keys(mine).length) { // then the edit the conflict stopped
            res = await api(this.url(`/${item.id}`), { method: "PATCH", body: mine });
          }
          this.unsaved.delete(item.id);
          this.hooks.onItem(res.data);
        } catch (err) { this.msg(`Could not resolve: ${err.message}`); } finally { b.disabled = false; }
      });
      return b;
    };
    const who = theirs.changed_by ? ` by ${theirs.changed_by}` : "";
    return el("section", { class: "conflict", "aria-label": "Conflict" },
      el("p", { class: "error-text", text: `Changed in Azure DevOps${who} (rev ${theirs.rev ?? "?"}) since our upload; nothing was overwritten.` }),
      el("div", { class: "sides" }, column("Mine", ours), column("Theirs (Azure DevOps)", theirs)),
      el("div", { class: "form-actions" }, keep("ours", "Keep mine"), keep("theirs", "Keep theirs")));
  }

  sources(d) {
    if (!d.sources?.length) return null;
    return el("section", {}, el("h3", { text: "Sources in the vision" }),
      el("ul", { class: "sources" }, ...d.sources.map((sid) => el("li", {},
        el("span", { class: "sid", text: sid }), " ", this.model.sentences.get(sid)?.text || ""))));
  }

  upload(d) {
    const u = d.upload || {};
    const state = u.state || "held";
    const line = el("p", {}, el("span", { class: `badge ${state}`, text: state === "held" ? "not uploaded" : statusLabel(state) }));
    if (u.ado_id && u.url) line.append(" ", el("a", { href: u.url, target: "_blank", rel: "noopener", text: `#${u.ado_id}` }));
    if (u.rev) line.append(el("span", { class: "hint", text: ` rev ${u.rev}` }));
    if (d.match) line.append(" ", el("span", { class: `tag match ${d.match}`, text: d.match }));
    return el("section", {}, el("h3", { text: "Azure DevOps" }), line, u.error ? el("p", { class: "error-text", text: u.error }) : null);
  }

  history(item) {
    const events = [...(item.data.history || []), ...this.hooks.history(item.id)];
    if (!events.length) return null;
    return el("section", {}, el("h3", { text: "History" }), el("ul", { class: "history" },
      ...events.map((ev) => el("li", { text: `${new Date((ev.at || 0) * 1000).toLocaleString()} — ${ev.author || "?"} ${ev.change}${ev.fields?.length ? `: ${ev.fields.join(", ")}` : ""}` }))));
  }

  msg(text) {
    const m = $("pane-msg");
    if (m) m.textContent = text;
  }
}

function text(value) {
  if (Array.isArray(value)) return value.map((v) => (typeof v === "object" ? `${v.action} → ${v.expected}` : v)).join("\n");
  return value === undefined || value === null ? "" : String(value);
}
