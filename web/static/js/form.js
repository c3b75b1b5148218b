// The new-job form: paste or load a vision, choose target, limits, QA and upload mode; POST it.

import { api, el } from "./api.js";

const $ = (id) => document.getElementById(id);
const LIMITS = ["max_epics", "max_features_per_epic", "max_stories_per_feature", "max_tasks_per_story", "max_test_cases_per_story"];
const FIELD_INPUTS = {
  vision: "vision", "azure_devops.organization_url": "org-url", "azure_devops.project": "project",
  "azure_devops.area_path": "area-path", "azure_devops.iteration_path": "iteration-path", "azure_devops.pat": "pat",
  "azure_devops.target": "target", upload_mode: "upload-mode", include_qa: "include-qa",
  ...Object.fromEntries(LIMITS.map((k) => [`limits.${k}`, k])),
};

export function setupForm(onCreated) {
  const form = $("job-form");
  let fileFormat = "";
  $("target").addEventListener("change", () => { $("ado-fields").hidden = $("target").value !== "ado"; });
  $("vision-file").addEventListener("change", async () => {
    const file = $("vision-file").files[0];
    if (!file) return;
    const ext = file.name.split(".").pop().toLowerCase();
    fileFormat = ext === "yml" ? "yaml" : ["yaml", "json"].includes(ext) ? ext : "";
    $("vision").value = await file.text();
    $("vision").dispatchEvent(new Event("input")); // the vision advice reads it too
    $("vision-format").textContent = `Loaded ${file.name}${fileFormat ? ` (read as ${fileFormat.toUpperCase()})` : ""}`;
  });
  $("vision").addEventListener("input", () => {
    if (!$("vision").value.trim()) { fileFormat = ""; $("vision-format").textContent = ""; }
  });
  const send = async (extra = {}) => {
    clearErrors();
    const body = { ...collect(), ...extra };
    if (!body.vision.trim()) {
      showErrors("Please paste a vision or load a file.", [{ field: "vision", message: "the vision is empty" }]);
      return;
    }
    $("submit-job").disabled = true;
    try {
      const res = await api("/api/jobs", { method: "POST", body, query: fileFormat ? { vision_format: fileFormat } : undefined });
      $("pat").value = "";
      onCreated(res.data.job_id);
    } catch (err) {
      if (err.status === 409 && err.code === "backlog_exists") offerRerun(err, send);
      else showErrors(err.message, err.details);
    } finally {
      $("submit-job").disabled = false;
    }
  };
  form.addEventListener("submit", (event) => { event.preventDefault(); send(); });
}

// The same vision and target already have a backlog: never a silent second copy. Offer to update the
// existing one (items matched, only changes uploaded) or, deliberately, to create a new copy.
function offerRerun(err, send) {
  const previous = err.details.find((d) => d.job_id)?.job_id;
  const box = $("rerun-offer");
  $("rerun-text").textContent = `${err.message}${previous ? "" : " (the earlier job is not named)"}`;
  $("rerun-link").href = previous ? `#/jobs/${previous}` : "#/";
  $("rerun-update").hidden = !previous;
  $("rerun-update").onclick = () => { box.hidden = true; send({ update_of: previous }); };
  $("rerun-copy").onclick = () => { box.hidden = true; send({ new_copy: true }); };
  box.hidden = false;
  (previous ? $("rerun-update") : $("rerun-copy")).focus();
}

export function collect() {
  const body = { vision: $("vision").value, include_qa: $("include-qa").checked };
  if ($("upload-mode").value) body.upload_mode = $("upload-mode").value;
  const ado = {};
  if ($("target").value) ado.target = $("target").value;
  if ($("target").value === "ado") {
    for (const [key, id] of [["organization_url", "org-url"], ["project", "project"], ["area_path", "area-path"],
      ["iteration_path", "iteration-path"], ["pat", "pat"]]) {
      if ($(id).value.trim()) ado[key] = $(id).value.trim();
    }
  }
  if (Object.keys(ado).length) body.azure_devops = ado;
  const limits = {};
  for (const key of LIMITS) if ($(key).value !== "") limits[key] = Number($(key).value);
  if (Object.keys(limits).length) body.limits = limits;
  return body;
}

function clearErrors() {
  $("rerun-offer").hidden = true;
  $("form-errors").hidden = true;
  $("form-errors").replaceChildren();
  for (const input of document.querySelectorAll("#job-form [aria-invalid]")) {
    input.removeAttribute("aria-invalid");
    input.removeAttribute("aria-describedby");
  }
}

function showErrors(message, details = []) {
  const box = $("form-errors");
  const items = details.map((d) => el("li", { text: `${d.field}: ${d.message}` }));
  box.replaceChildren(el("strong", { text: message }), items.length ? el("ul", {}, ...items) : null);
  box.hidden = false;
  let first = null;
  for (const d of details) {
    const input = $(FIELD_INPUTS[d.field] || "");
    if (!input) continue;
    input.setAttribute("aria-invalid", "true");
    input.setAttribute("aria-describedby", "form-errors");
    first = first || input;
  }
  (first || box).focus?.();
}
