// Search and filters over the tree: text (title and description), kind, upload state, conflicts only,
// with the count of matches. Applied on every keystroke: filtering 1,500 items takes a few ms.

const $ = (id) => document.getElementById(id);

export function setupSearch(model, tree) {
  const inputs = ["search-text", "filter-kind", "filter-state", "filter-conflicts"].map($);
  const apply = () => {
    const filter = {
      text: $("search-text").value, kind: $("filter-kind").value,
      state: $("filter-state").value, conflicts: $("filter-conflicts").checked,
    };
    const matches = model.matches(filter);
    tree.filter(matches);
    $("search-count").textContent = matches ? `${matches.size} ${matches.size === 1 ? "match" : "matches"}` : "";
    $("tree").classList.toggle("filtered", Boolean(matches));
  };
  for (const input of inputs) input.addEventListener(input.type === "checkbox" || input.tagName === "SELECT" ? "change" : "input", apply);
  const reset = () => {
    $("search-text").value = ""; $("filter-kind").value = ""; $("filter-state").value = ""; $("filter-conflicts").checked = false;
    apply();
  };
  $("search-clear").addEventListener("click", reset);
  return { apply, reset };
}
