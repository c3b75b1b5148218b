// Login when the API needs a token: the token is POSTed once and exchanged for an HttpOnly,
// SameSite=Strict session cookie that fetch and EventSource send by themselves. The token is never
// kept by the page, never put in a URL, never stored.

import { api, ApiError } from "./api.js";

const $ = (id) => document.getElementById(id);

export class Login {
  constructor(onLoggedIn) {
    this.onLoggedIn = onLoggedIn;
    this.view = $("login-view");
    this.form = $("login-form");
    this.error = $("login-error");
    this.logout = $("logout-btn");
    this.form.addEventListener("submit", (e) => { e.preventDefault(); this.submit(); });
    this.logout.addEventListener("click", () => this.signOut());
    window.addEventListener("backlogd:unauthorized", () => this.show());
  }

  // Resolves true when the app may start (no auth, or already logged in).
  async check() {
    try {
      const { data } = await api("/api/session");
      this.logout.hidden = !data.auth_required;
      if (data.auth_required && !data.authenticated) { this.show(); return false; }
      return true;
    } catch {
      return true; // the app's own calls will say what is wrong
    }
  }

  show() {
    if (!this.view.hidden) return;
    $("home-view").hidden = true;
    $("job-view").hidden = true;
    this.view.hidden = false;
    this.error.hidden = true;
    $("login-token").focus();
  }

  async submit() {
    const input = $("login-token");
    try {
      await api("/api/session", { method: "POST", body: { token: input.value } });
      input.value = "";
      this.view.hidden = true;
      this.logout.hidden = false;
      this.onLoggedIn();
    } catch (err) {
      this.error.textContent = err instanceof ApiError && err.status === 401
        ? "That is not the API token." : (err.message || "Login failed.");
      this.error.hidden = false;
    }
  }

  async signOut() {
    try { await api("/api/session", { method: "DELETE" }); } catch { /* the cookie may be gone already */ }
    this.show();
  }
}
