// The fields a person can edit on an item, by kind: shown read-only in the pane, or as a form whose
// values become a PATCH (or POST) body, with the server's 400 details shown next to their field.

import { el } from "./api.js";

export const FIELDS = {
  title: { label: "Title", type: "text" },
  description: { label: "Description", type: "area" },
  acceptance_criteria: { label: "Acceptance criteria", type: "lines", hint: "one per line" },
  steps: { label: "Steps", type: "steps", hint: "one per line: action | expected result" },
  story_points: { label: "Story points", type: "number" },
  estimate_hours: { label: "Estimate (hours)", type: "number", step: "0.5" },
  priority: { label: "Priority", type: "number", min: "1", max: "4" },
  // asked only when adding an item: the generator fills them, an edit leaves them as they are
  user_story: { label: "User story", type: "area", hint: "As a …, I want …, so that …" },
  activity: { label: "Activity", type: "select", options: ["Development", "Design", "Testing", "Documentation", "Deployment", "Requirements"] },
  preconditions: { label: "Preconditions", type: "area" },
  business_value: { label: "Business value", type: "number", min: "1", max: "100" },
};

// What a new item of each kind needs on top of the editable fields.
export const ADD_FIELDS = {
  epic: ["business_value"], story: ["user_story"], task: ["activity"], test_case: ["preconditions"],
};

export const KIND_FIELDS = {
  epic: ["title", "description", "priority"],
  feature: ["title", "description", "priority"],
  story: ["title", "description", "acceptance_criteria", "story_points", "priority"],
  task: ["title", "description", "estimate_hours"],
  test_case: ["title", "description", "steps", "priority"],
};

function shown(name, value) {
  const type = FIELDS[name].type;
  if (type === "lines") return (value || []).join("\n");
  if (type === "steps") return (value || []).map((s) => `${s.action} | ${s.expected}`).join("\n");
  return value ?? "";
}

function parsed(name, text) {
  const type = FIELDS[name].type;
  const lines = () => text.split("\n").map((l) => l.trim()).filter(Boolean);
  if (type === "lines") return lines();
  if (type === "steps") {
    return lines().map((l) => {
      const [action, ...rest] = l.split("|");
      return { action: action.trim(), expected: rest.join("|").trim() };
    });
  }
  if (type === "number") return text.trim() === "" ? null : Number(text);
  return text;
}

// A form for `kind` filled from `data` (or empty); returns {form, values(changedOnly), showErrors}.
export function itemForm(kind, data, idPrefix, adding = false) {
  const names = [...(KIND_FIELDS[kind] || ["title", "description"]), ...(adding ? ADD_FIELDS[kind] || [] : [])];
  const inputs = {};
  const rows = names.map((name) => {
    const f = FIELDS[name];
    const id = `${idPrefix}-${name}`;
    const input = f.type === "select"
      ? el("select", { id, name }, ...f.options.map((o) => el("option", { value: o, text: o })))
      : f.type === "text" || f.type === "number"
        ? el("input", { id, name, type: f.type, step: f.step, min: f.min, max: f.max, inputmode: f.type === "number" ? "decimal" : undefined })
        : el("textarea", { id, name, rows: f.type === "area" ? 5 : 4 });
    if (f.type !== "select" || data?.[name]) input.value = String(shown(name, data?.[name]));
    inputs[name] = input;
    return el("div", { class: "form-row" },
      el("label", { for: id, text: f.label }, f.hint ? el("span", { class: "hint", text: ` (${f.hint})` }) : null),
      input, el("span", { class: "field-error", id: `${id}-error`, hidden: true }));
  });
  const general = el("div", { class: "errors", role: "alert", hidden: true });
  const form = el("form", { class: "item-form", novalidate: true }, general, ...rows);

  const values = (changedOnly) => {
    const out = {};
    for (const [name, input] of Object.entries(inputs)) {
      const value = parsed(name, input.value);
      const before = parsed(name, String(shown(name, data?.[name])));
      if (changedOnly && JSON.stringify(value) === JSON.stringify(before)) continue;
      if (value !== null) out[name] = value;
    }
    return out;
  };

  const showErrors = (message, details = []) => {
    for (const span of form.querySelectorAll(".field-error")) { span.hidden = true; span.textContent = ""; }
    for (const input of Object.values(inputs)) input.removeAttribute("aria-invalid");
    const loose = [];
    for (const d of details) {
      const name = String(d.field || "").split(/[.[\]]/).find((seg) => inputs[seg]);
      if (!name) { loose.push(d); continue; }
      const span = form.querySelector(`#${idPrefix}-${name}-error`);
      span.textContent = span.textContent ? `${span.textContent}; ${d.message}` : d.message;
      span.hidden = false;
      inputs[name].setAttribute("aria-invalid", "true");
      inputs[name].setAttribute("aria-describedby", span.id);
    }
    general.replaceChildren(el("strong", { text: message || "" }),
      loose.length ? el("ul", {}, ...loose.map((d) => el("li", { text: `${d.field}: ${d.message}` }))) : null);
    general.hidden = !message;
    (form.querySelector("[aria-invalid=true]") || general).focus?.();
  };
  return { form, inputs, values, showErrors };
}

// The fields of an item, read-only.
export function fieldView(kind, data) {
  const rows = [];
  const add = (label, value) => { if (value !== null && value !== undefined && value !== "") rows.push(el("dt", { text: label }), el("dd", {}, value)); };
  add("Description", data.description ? el("p", { class: "pre", text: data.description }) : null);
  add("User story", data.user_story ? el("p", { text: data.user_story }) : null);
  if (data.acceptance_criteria?.length) add("Acceptance criteria", el("ul", {}, ...data.acceptance_criteria.map((c) => el("li", { text: c }))));
  if (data.preconditions) add("Preconditions", el("p", { text: data.preconditions }));
  if (data.steps?.length) add("Steps", el("ol", {}, ...data.steps.map((s) => el("li", { text: `${s.action} → ${s.expected}` }))));
  const numbers = [["Points", data.story_points], ["Estimate", data.estimate_hours != null ? `${data.estimate_hours} h` : null],
    ["Priority", data.priority], ["Activity", data.activity], ["Business value", data.business_value]]
    .filter(([, v]) => v !== null && v !== undefined).map(([k, v]) => `${k}: ${v}`).join(" · ");
  add("Estimates", numbers ? el("p", { class: "numbers", text: numbers }) : null);
  return el("dl", { class: "fields-view" }, ...rows);
}
