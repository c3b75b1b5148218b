// The traceability view: every vision sentence with the stories citing it; uncovered ones highlighted.
// Rendered when its <details> is opened (and again on changes while open), so a big job pays nothing.

import { el } from "./api.js";

export class TraceView {
  constructor(details, list, summary, model, onOpen) {
    this.details = details;
    this.list = list;
    this.summary = summary;
    this.model = model;
    this.onOpen = onOpen;
    details.addEventListener("toggle", () => { if (details.open) this.render(); });
    list.addEventListener("click", (e) => {
      const a = e.target.closest("a[data-item]");
      if (a) { e.preventDefault(); this.onOpen(a.dataset.item); }
    });
  }

  update() {
    const rows = this.model.traceability();
    const uncovered = rows.filter((r) => !r.covered_by.length).length;
    this.details.hidden = rows.length === 0;
    this.summary.textContent = `${rows.length - uncovered} of ${rows.length} vision sentences covered${uncovered ? ` · ${uncovered} uncovered` : ""}`;
    if (this.details.open) this.render(rows);
  }

  render(rows = this.model.traceability()) {
    this.list.replaceChildren(...rows.map((r) => el("li", { class: r.covered_by.length ? "covered" : "uncovered", "data-sentence": r.id },
      el("p", {}, el("span", { class: "sid", text: r.id }), " ", r.text),
      r.covered_by.length
        ? el("ul", {}, ...r.covered_by.map((id) => el("li", {}, el("a", { href: `#item-${id}`, "data-item": id, text: this.model.items.get(id)?.title || id }))))
        : el("p", { class: "hint", text: "No story covers this sentence." }))));
  }
}
