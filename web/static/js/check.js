// "Check connection": the pre-flight of the chosen target (POST /api/targets/check), shown under the form.

import { api, el } from "./api.js";
import { collect } from "./form.js";

const $ = (id) => document.getElementById(id);

export function setupCheck() {
  $("check-btn").addEventListener("click", async () => {
    const { azure_devops, include_qa } = collect();
    const box = $("check-result");
    $("check-btn").disabled = true;
    box.hidden = false;
    box.className = "check-result";
    box.replaceChildren(el("span", { text: "Checking…" }));
    try {
      const res = await api("/api/targets/check", { method: "POST", body: { azure_devops, include_qa } });
      show(res.data);
    } catch (err) {
      box.classList.add("bad");
      box.replaceChildren(el("strong", { text: err.message }));
    } finally {
      $("check-btn").disabled = false;
    }
  });
}

function show(report) {
  const box = $("check-result");
  box.classList.toggle("bad", report.fatal);
  const verdict = report.ok ? "All is well" : report.fatal ? "A job to this target cannot run" : "A job runs, with warnings";
  const passed = report.passed.map((line) => el("li", { text: `✓ ${line}` }));
  const problems = report.problems.map((p) =>
    el("li", { text: `${p.fatal ? "✗" : "!"} ${p.message} — ${p.fix}` }));
  box.replaceChildren(el("strong", { text: verdict }), el("ul", {}, ...passed, ...problems));
}
