// The quality panel of a job: each metric of the backlog's quality model with its target, what fell
// short, and links that open the offending items in the tree.

import { api, el } from "./api.js";

const MAX_SHOWN = 10;

export class QualityPanel {
  constructor(section, table, shortList, summary) {
    this.section = section;
    this.table = table;
    this.shortList = shortList;
    this.summary = summary;
    this.jobId = null;
  }

  clear() {
    this.jobId = null;
    this.section.hidden = true;
    this.table.replaceChildren();
    this.shortList.replaceChildren();
    this.summary.textContent = "";
  }

  async load(jobId) {
    this.jobId = jobId;
    try {
      const res = (await api(`/api/jobs/${jobId}/quality`)).data;
      if (this.jobId !== jobId || !res.available) return;
      this.render(res.quality);
    } catch { /* shown on the next finish or reload */ }
  }

  render(card) {
    const short = card.metrics.filter((m) => !m.ok);
    this.summary.textContent = short.length ? `${short.length} of ${card.metrics.length} metrics short of target` : `All ${card.metrics.length} metrics on target`;
    this.summary.className = short.length ? "quality-summary short" : "quality-summary ok";
    this.table.replaceChildren(...card.metrics.map((m) => el("tr", { "data-metric": m.key, class: m.ok ? "ok" : "short" },
      el("th", { scope: "row", text: m.label, title: m.definition }),
      el("td", { text: shown(m, m.value) }),
      el("td", { text: target(m) }),
      el("td", { text: m.ok ? "✓ on target" : "✗ short" }))));
    this.shortList.replaceChildren(...short.map((m) => el("li", { "data-metric": m.key },
      el("strong", { text: `${m.label}: ` }), el("span", { class: "hint", text: m.definition }),
      el("ul", {}, ...m.offenders.slice(0, MAX_SHOWN).map((o) => offender(o))))));
    this.section.hidden = false;
  }
}

function shown(m, value) {
  return m.higher_is_better ? `${Math.round(value * 100)}%` : String(value);
}

function target(m) {
  return m.higher_is_better ? `≥ ${Math.round(m.target * 100)}%` : `≤ ${m.target}`;
}

function offender(o) {
  const item = document.getElementById(`item-${o.id}`);
  const label = `${o.title}`;
  const link = item ? el("a", { href: `#item-${o.id}`, class: "offender", "data-item": o.id, text: label }) : el("span", { text: label });
  if (item) link.addEventListener("click", (event) => { event.preventDefault(); reveal(item); });
  return el("li", {}, link, el("span", { class: "hint", text: ` — ${o.problem}` }));
}

// Open every folded ancestor of a tree node, scroll to it and mark it.
function reveal(node) {
  for (let p = node.parentElement; p; p = p.parentElement) if (p.tagName === "DETAILS") p.open = true;
  const inner = node.querySelector("details");
  if (inner) inner.open = true;
  node.scrollIntoView({ block: "center" });
  for (const old of document.querySelectorAll(".tree li.flagged")) old.classList.remove("flagged");
  node.classList.add("flagged");
}
