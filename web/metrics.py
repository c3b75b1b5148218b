"""``GET /metrics``: Prometheus text from a registry of this app's own (never the global one).

It holds the service's counters (``service.metrics``) and, read at scrape time, the levels:

backlogd_jobs{status}                       jobs in the database by status
backlogd_outbox_items{state}                items of queued/running jobs by upload state (queue depth)
backlogd_sse_clients                        open progress streams
backlogd_adaptive_limit{upstream}           AIMD concurrency limit (upstream: llm | ado)
backlogd_adaptive_ceiling{upstream}         its ceiling
backlogd_adaptive_in_use{upstream}          requests holding a slot
backlogd_adaptive_waiting{upstream}         requests queued for a slot
backlogd_upstream_throttles_total{upstream} 429 / Retry-After answers received
backlogd_draining                           1 once shutdown began

Every ADO identity's gate is summed under ``upstream="ado"``: labels stay bounded whatever the PATs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from outbox.records import ITEM_STATES
from service.composition import Services
from vocab import OPEN_JOB_STATES, JobStatus
from web.keys import DRAINING, SERVICES, STREAMS

JOB_STATES: tuple[JobStatus, ...] = tuple(JobStatus)
_ADAPTIVE = ("limit", "ceiling", "in_use", "waiting")


class _Delegate(Collector):
    """The service's own registry, collected as part of this app's."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self._registry = registry

    def collect(self) -> Iterable[Metric]:
        return self._registry.collect()


class LiveCollector(Collector):
    """Levels read at scrape time; the async part (database counts) is taken by ``refresh``."""

    def __init__(self, app: web.Application) -> None:
        self._app = app
        self.jobs: dict[str, int] = {}
        self.items: dict[str, int] = {}

    async def refresh(self) -> None:
        store = self._app[SERVICES].store
        jobs = await store.jobs_in(JOB_STATES)
        self.jobs = {state: sum(1 for j in jobs if j.status == state) for state in JOB_STATES}
        items: dict[str, int] = dict.fromkeys(ITEM_STATES, 0)
        for job in jobs:
            if job.status in OPEN_JOB_STATES:
                for states in (await store.item_counts(job.id)).values():
                    for state, n in states.items():
                        items[state] = items.get(state, 0) + n
        self.items = items

    def collect(self) -> Iterator[Metric]:
        services = self._app[SERVICES]
        jobs = GaugeMetricFamily("backlogd_jobs", "Jobs in the database by status", labels=["status"])
        for state, n in self.jobs.items():
            jobs.add_metric([state], n)
        yield jobs
        items = GaugeMetricFamily(
            "backlogd_outbox_items", "Items of queued and running jobs by upload state", labels=["state"]
        )
        for state, n in self.items.items():
            items.add_metric([state], n)
        yield items
        yield GaugeMetricFamily(
            "backlogd_sse_clients", "Open progress streams", value=len(self._app[STREAMS])
        )
        yield GaugeMetricFamily(
            "backlogd_draining", "1 once shutdown began", value=int(self._app[DRAINING].is_set())
        )
        yield from adaptive_metrics(upstream_snapshots(services))


def upstream_snapshots(services: Services) -> dict[str, list[dict[str, Any]]]:
    ado = list(services.uploads.gate_snapshots().values()) if services.uploads is not None else []
    return {"llm": [services.llm_limiter.snapshot()], "ado": ado}


def adaptive_metrics(snapshots: dict[str, list[dict[str, Any]]]) -> Iterator[Metric]:
    families = {
        key: GaugeMetricFamily(f"backlogd_adaptive_{key}", f"Adaptive limiter: {key}", labels=["upstream"])
        for key in _ADAPTIVE
    }
    throttles = CounterMetricFamily(
        "backlogd_upstream_throttles", "429 / Retry-After answers received", labels=["upstream"]
    )
    for upstream, snaps in snapshots.items():
        for key in _ADAPTIVE:
            families[key].add_metric([upstream], sum(float(s.get(key, 0)) for s in snaps))
        throttles.add_metric([upstream], sum(float(s.get("throttles", 0)) for s in snaps))
    yield from families.values()
    yield throttles


METRICS = web.AppKey("metrics", CollectorRegistry)
LIVE = web.AppKey("live_metrics", LiveCollector)


def install(app: web.Application, services: Services) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Delegate(services.metrics.registry))
    live = LiveCollector(app)
    registry.register(live)
    app[METRICS] = registry
    app[LIVE] = live


async def metrics(request: web.Request) -> web.Response:
    await request.app[LIVE].refresh()
    body = generate_latest(request.app[METRICS])
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
