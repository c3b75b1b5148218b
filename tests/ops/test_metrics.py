"""``GET /metrics``: Prometheus text from the app's own registry, present from the start and changing
as jobs run; label sets stay bounded (no job or item ids)."""

from __future__ import annotations

import re
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from service.requests import JobRequest
from tests.ops.conftest import VISION, AppFactory

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def _scrape(client: Any) -> tuple[Samples, str]:
    resp = await client.get("/metrics")
    assert resp.status == 200
    assert resp.headers["Content-Type"].startswith("text/plain")
    text = await resp.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples, text


def _get(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_metrics_are_present_before_any_job(make_client: AppFactory) -> None:
    """Every family is there (at zero) on a fresh service: scrapes and alerts need no warm-up."""
    client, _ = await make_client()
    samples, _ = await _scrape(client)
    assert _get(samples, "backlogd_llm_requests_total", outcome="ok") == 0
    assert _get(samples, "backlogd_llm_request_duration_seconds_count") == 0
    assert _get(samples, "backlogd_llm_tokens_total", kind="prompt") == 0
    assert _get(samples, "backlogd_uploads_total", outcome="uploaded") == 0
    assert _get(samples, "backlogd_jobs_finished_total", status="completed") == 0
    assert _get(samples, "backlogd_jobs", status="running") == 0
    assert _get(samples, "backlogd_outbox_items", state="pending") == 0
    assert _get(samples, "backlogd_sse_clients") == 0
    assert _get(samples, "backlogd_adaptive_limit", upstream="llm") >= 1
    assert _get(samples, "backlogd_upstream_throttles_total", upstream="llm") == 0
    assert _get(samples, "backlogd_draining") == 0


async def test_metrics_change_as_a_job_runs_and_uploads(make_client: AppFactory) -> None:
    """After a job that generates and uploads: LLM requests, latency and uploads counted, the job counted
    by status, an open stream counted; no label carries a job or item id."""
    client, services = await make_client(azure_devops={"target": "emulator", "upload_mode": "streaming"})
    job_id = (await (await client.post("/api/jobs", json={"vision": VISION})).json())["job_id"]
    job = await services.jobs.wait(job_id)
    assert job.status == "completed"
    second = await services.jobs.submit(JobRequest(vision=VISION, upload_mode="manual"))
    await services.jobs.wait(second)
    stream = await client.get(f"/api/progress/stream/{second}")  # awaiting_upload: the stream stays open
    samples, text = await _scrape(client)
    calls = len(await services.store.calls(job_id)) + len(await services.store.calls(second))
    items = len(await services.store.items(job_id))
    assert _get(samples, "backlogd_llm_requests_total", outcome="ok") == calls
    assert _get(samples, "backlogd_llm_request_duration_seconds_count") == calls
    assert _get(samples, "backlogd_uploads_total", outcome="uploaded") == items
    assert _get(samples, "backlogd_jobs_finished_total", status="completed") == 1
    assert _get(samples, "backlogd_jobs_finished_total", status="awaiting_upload") == 1
    assert _get(samples, "backlogd_jobs", status="completed") == 1
    assert _get(samples, "backlogd_jobs", status="awaiting_upload") == 1
    assert _get(samples, "backlogd_sse_clients") == 1
    assert _get(samples, "backlogd_adaptive_limit", upstream="ado") >= 1
    assert job_id not in text and second not in text
    assert not re.search(r'="[0-9a-f]{8}-[0-9a-f]{4}-', text), "no uuid in any label"
    stream.close()


async def test_throttles_tokens_and_errors_from_the_llm_are_counted(
    make_client: AppFactory, fake_llm: Any
) -> None:
    """A 429 and a 500 from the LLM show up as outcomes and as throttles received from upstream "llm";
    the tokens it reported are summed."""
    fake = await fake_llm(script=[("429", 0.01), "500"])
    client, services = await make_client(
        llm={"provider": "openai", "base_url": fake.base_url, "api_key_env": None, "max_attempts": 3}
    )
    job_id = (await (await client.post("/api/jobs", json={"vision": VISION})).json())["job_id"]
    assert (await services.jobs.wait(job_id)).status == "completed"
    samples, _ = await _scrape(client)
    assert _get(samples, "backlogd_llm_requests_total", outcome="throttled") == 1
    assert _get(samples, "backlogd_llm_requests_total", outcome="transient_error") == 1
    assert _get(samples, "backlogd_upstream_throttles_total", upstream="llm") == 1
    usage = fake.fake.usage
    assert _get(samples, "backlogd_llm_tokens_total", kind="prompt") == usage["prompt_tokens"] > 0
    assert _get(samples, "backlogd_llm_tokens_total", kind="completion") == usage["completion_tokens"] > 0
