// Small fetch helpers: JSON in, JSON out, errors as ApiError carrying the server's {error} body.

export class ApiError extends Error {
  constructor(status, error, body = null) {
    super(error?.message || `HTTP ${status}`);
    this.status = status;
    this.body = body; // the whole answer (a 409 conflict carries {ours, theirs})
    this.code = error?.code || "http_error";
    this.details = error?.details || [];
  }
}

export async function api(path, { method = "GET", body, etag, query } = {}) {
  const headers = { Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (etag) headers["If-None-Match"] = etag;
  const url = query ? `${path}?${new URLSearchParams(query)}` : path;
  const resp = await fetch(url, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store" });
  if (resp.status === 304) return { status: 304, data: null, etag };
  const text = await resp.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch { data = null; }
  if (resp.status === 401 && path !== "/api/session") window.dispatchEvent(new Event("backlogd:unauthorized"));
  if (!resp.ok) throw new ApiError(resp.status, data?.error || { message: text.slice(0, 200) }, data);
  return { status: resp.status, data, etag: resp.headers.get("ETag") };
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children) if (child) node.append(child);
  return node;
}

export const KIND_NAMES = {
  epic: "Epic", feature: "Feature", story: "Story", task: "Task", test_case: "Test case",
  test_plan: "Test plan", test_suite: "Test suite",
};

export const TERMINAL = new Set(["completed", "completed_with_errors", "failed", "cancelled"]);

export function statusLabel(status) {
  return String(status || "").replaceAll("_", " ");
}
