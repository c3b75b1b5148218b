"""At ``info`` the log tells a job's story in milestones; each LLM call and each upload is ``debug``."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

from service import logs
from service.composition import build_services
from service.requests import JobRequest
from service.settings import Settings

VISION = {
    "title": "Tool library",
    "vision": "Neighbours lend and borrow tools. Lenders see who has their drill.",
    "target_users": ["Lenders", "Borrowers"],
    "key_features": ["Lending calendar", "Return reminders"],
}
LIMITS = {
    "max_epics": 2,
    "max_features_per_epic": 2,
    "max_stories_per_feature": 2,
    "max_tasks_per_story": 2,
    "max_test_cases_per_story": 2,
}
PER_CALL_OR_ITEM = re.compile(r"^(llm_|upload_)")  # warnings keep these names; none is expected here
_PRIORITY = re.compile(r"^<\d>")


def _lines(text: str) -> list[dict[str, Any]]:
    return [json.loads(_PRIORITY.sub("", ln)) for ln in text.splitlines() if ln.strip()]


async def test_info_log_has_the_milestones_and_no_per_call_or_per_item_lines(tmp_path: Path) -> None:
    """An offline job uploaded to the embedded emulator logs, at info, one line each when it is
    created, generated, uploaded and finished, and not one line per LLM call or per uploaded item."""
    settings = Settings.model_validate(
        {
            "database": {"path": str(tmp_path / "state" / "backlogd.sqlite3")},
            "workflow": {"limits": LIMITS, "parallel_processing": {"use_hardware_optimization": False}},
            "azure_devops": {"target": "emulator"},
        }
    )
    captured = io.StringIO()
    with contextlib.redirect_stderr(captured):
        logs.configure("info", "json")
        async with build_services(settings, {}) as services:
            job_id = await services.jobs.submit(JobRequest(vision=VISION))
            job = await services.jobs.wait(job_id)
            items = await services.store.items(job_id)
    assert job.status == "completed"
    lines = [ln for ln in _lines(captured.getvalue()) if ln.get("job_id") == job_id]
    events = [ln["event"] for ln in lines]
    assert events == ["job_created", "job_generated", "job_uploaded", "job_finished"], events
    generated, uploaded, finished = lines[1], lines[2], lines[3]
    generated_kinds = {"epic", "feature", "story", "task", "test_case"}
    assert sum(generated["items"].values()) == sum(1 for i in items if i.kind in generated_kinds)
    assert generated["failed_calls"] == 0
    assert uploaded["outcome"] == "uploaded" and uploaded["items"] == {"uploaded": len(items)}
    assert finished["status"] == "completed"
    everything = [ln["event"] for ln in _lines(captured.getvalue())]
    assert not [e for e in everything if PER_CALL_OR_ITEM.match(e)], everything
    assert all(ln["level"] in ("info", "warning", "error") for ln in _lines(captured.getvalue()))
