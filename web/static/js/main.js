// Hash routing between the home view (form + jobs list) and a job's page, after a login when the
// API needs one.

import { setupAdvice } from "./advice.js";
import { setupForm } from "./form.js";
import { setupCheck } from "./check.js";
import { JobPage } from "./jobpage.js";
import { JobsList } from "./jobs.js";
import { Login } from "./login.js";

const $ = (id) => document.getElementById(id);
const jobs = new JobsList($("jobs-list"), $("jobs-empty"));
const page = new JobPage();

function route() {
  const match = location.hash.match(/^#\/jobs\/([\w-]+)/);
  if (match) {
    jobs.stop();
    $("home-view").hidden = true;
    $("job-view").hidden = false;
    page.open(match[1]);
    $("job-title").focus?.();
  } else {
    page.close();
    document.title = "backlogd";
    $("job-view").hidden = true;
    $("home-view").hidden = false;
    jobs.start();
  }
}

setupForm((jobId) => { location.hash = `#/jobs/${jobId}`; });
setupCheck();
setupAdvice($("vision"), $("vision-advice"));
window.addEventListener("hashchange", () => { if ($("login-view").hidden) route(); });
const login = new Login(route);
login.check().then((ok) => { if (ok) route(); });
