// Advice on the vision as it is typed: what it lacks (target users, a measurable metric, sentences
// concrete enough to cite). Advice only: the form submits either way.

import { api, el } from "./api.js";

const WAIT_MS = 600;

export function setupAdvice(textarea, box) {
  let timer = null;
  let asked = 0;
  const check = async () => {
    const text = textarea.value;
    const mine = ++asked;
    if (!text.trim()) { box.hidden = true; box.replaceChildren(); return; }
    try {
      const res = (await api("/api/vision/advice", { method: "POST", body: { vision: text } })).data;
      if (mine !== asked) return;
      show(box, res.advice);
    } catch { if (mine === asked) { box.hidden = true; box.replaceChildren(); } }
  };
  textarea.addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(check, WAIT_MS); });
  return check;
}

function show(box, advice) {
  if (!advice.length) {
    box.replaceChildren(el("p", { class: "advice-ok", text: "The vision names its users, a measurable goal and concrete sentences." }));
  } else {
    box.replaceChildren(el("p", { text: "Before you generate — the vision could say more:" }),
      el("ul", {}, ...advice.map((a) => el("li", { "data-code": a.code, text: a.message }))));
  }
  box.hidden = false;
}
