"""Prometheus metrics of the server, through `prometheus_client`.

What is exported: throughput (`inspection_items_total` by station and route, and
`inspection_http_requests_total`; rate() gives items per second), latency histograms
(`inspection_http_request_duration_seconds`, `inspection_ingest_duration_seconds`: percentiles with
histogram_quantile), errors (`inspection_errors_total{kind="model"|"http_5xx"}`: the deciding model
failed, timed out or gave an invalid score; a request answered 5xx), the review queue's depth and the
age of its oldest open item, process memory (`process_resident_memory_bytes`), and monitoring.

Counters and histograms are updated on the hot path (every request, every stored inspection); the
queue gauges are read from the database at scrape time, open items only (`review.queue_depth`), so a
scrape costs one small query plus one read of the station index; `inspection_queue_depth{status="queued"}`
is 0, not missing, for every station with a policy or any inspection.
Monitoring (open alarms, each rule's latest drift statistic and p-value) is read the same way
(`MonitorCollector`, two small queries).

Several server processes (`uvicorn --workers N`, gunicorn): start them with `PROMETHEUS_MULTIPROC_DIR`
set to an empty directory. Every process then writes its values there and any process answering
`/metrics` exports the sum over all of them (`MultiProcessCollector`); process memory is exported per
worker (`pid` label). Without the variable each app keeps its own registry, so apps built side by
side (tests) never mix their counts. `inspection serve --workers N` (N > 1) sets the variable to a fresh
directory itself. A worker that stops marks itself dead (its memory series leave the export); one that
crashed is swept by the next worker to start (uvicorn replaces it).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead
from prometheus_client.process_collector import ProcessCollector
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from inspection import store
from inspection.services import monitoring, review
from inspection.services.context import Pipeline

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
MEMORY_REFRESH_SECONDS = 10.0  # a worker re-reads its memory at most this often (one /proc read)
_MEMORY = ("process_resident_memory_bytes", "process_virtual_memory_bytes")


def multiprocess_dir() -> str | None:
    """The shared directory of multiprocess mode (prometheus_client reads the same variable)."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def sweep_dead_workers(path: str) -> list[int]:
    """Drop the live gauges of processes that died without shutting down (killed, out of memory): their
    last memory reading would otherwise stay in the export. The directory is local to one machine, so
    its pids are this machine's. Returns the pids swept."""
    dead: set[int] = set()
    for f in Path(path).glob("gauge_live*_*.db"):
        tail = f.stem.rsplit("_", 1)[-1]
        if tail.isdigit() and not _alive(int(tail)):
            dead.add(int(tail))
    for pid in sorted(dead):
        mark_process_dead(pid, path)
    return sorted(dead)


class QueueCollector:
    """`inspection_queue_depth` and `inspection_queue_oldest_age_seconds` by station and status,
    computed when scraped from the open (queued or claimed) items only."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        labels = ["station", "status"]
        return (
            GaugeMetricFamily(
                "inspection_queue_depth", "Items waiting for (queued) or held by (claimed) a person.", labels=labels
            ),
            GaugeMetricFamily("inspection_queue_oldest_age_seconds", "Age of the oldest open item.", labels=labels),
        )

    def describe(self) -> Iterable[Metric]:
        return self._families()  # names only: registering must not query the database

    def collect(self) -> Iterable[Metric]:
        depth, age = self._families()
        now = time.time()
        open_items: dict[tuple[str, str], store.QueueDepth | None] = {
            (q.station, str(q.status)): q for q in review.queue_depth(self.pipeline)
        }
        # An empty queue is 0, not "no data": every known station has its queued series.
        for station in review.queue_stations(self.pipeline):
            open_items.setdefault((station, "queued"), None)
        for (station, status), q in sorted(open_items.items()):
            depth.add_metric([station, status], 0 if q is None else q.count)
            if q is not None and q.oldest is not None:
                age.add_metric([station, status], round(max(0.0, now - q.oldest.timestamp()), 3))
        return [depth, age]


class MonitorCollector:
    """Monitoring read from the database at scrape time (so every server process exports the same):
    `inspection_alarm_open` (1 per open alarm, by station, rule and severity), the latest look of
    every rule (`inspection_drift_statistic`, `inspection_drift_p_value`, by station, metric and rule;
    untested looks left out) and `inspection_monitor_evaluation_age_seconds` per station."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.pipeline = pipeline

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily, GaugeMetricFamily]:
        look = ["station", "metric", "rule"]
        return (
            GaugeMetricFamily(
                "inspection_alarm_open", "Open monitoring alarms (1 each).", labels=["station", "rule", "severity"]
            ),
            GaugeMetricFamily("inspection_drift_statistic", "Latest drift statistic of each rule.", labels=look),
            GaugeMetricFamily("inspection_drift_p_value", "Latest drift p-value of each rule.", labels=look),
            GaugeMetricFamily(
                "inspection_monitor_evaluation_age_seconds", "Time since the station was evaluated.", labels=["station"]
            ),
        )

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        alarms, stats, pvalues, age = self._families()
        gauges = monitoring.monitor_gauges(self.pipeline)
        for a in gauges.alarms:
            alarms.add_metric([a.station, a.rule, a.severity], 1)
        now = time.time()
        for st in gauges.stations:
            evaluated = st.evaluated_at if st.evaluated_at.tzinfo else st.evaluated_at.replace(tzinfo=UTC)
            age.add_metric([st.station], round(max(0.0, now - evaluated.timestamp()), 3))
            for r in st.results:
                labels = [st.station, str(r.get("metric")), str(r.get("rule"))]
                if r.get("statistic") is not None:
                    stats.add_metric(labels, float(r["statistic"]))
                if r.get("p_value") is not None:
                    pvalues.add_metric(labels, float(r["p_value"]))
        return [alarms, stats, pvalues, age]


class _WorkerMemory:
    """Multiprocess mode: custom collectors only see the scraping process, so each worker copies
    its own memory (read by prometheus_client's ProcessCollector) into gauges kept per pid."""

    def __init__(self) -> None:
        self._reader = ProcessCollector(registry=None)
        self._gauges = {
            name: Gauge(name, f"{name} of each server process.", multiprocess_mode="liveall", registry=None)
            for name in _MEMORY
        }
        self._next = 0.0

    def refresh(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now < self._next:
            return
        self._next = now + MEMORY_REFRESH_SECONDS
        for family in self._reader.collect():
            if family.name in self._gauges and family.samples:
                self._gauges[family.name].set(family.samples[0].value)


@dataclass(frozen=True)
class _Instruments:
    requests: Counter
    latency: Histogram
    ingest_latency: Histogram
    items: Counter
    errors: Counter


def _instruments(registry: CollectorRegistry | None) -> _Instruments:
    return _Instruments(
        requests=Counter(
            "inspection_http_requests",
            "HTTP requests by method, route and status.",
            ["method", "path", "status"],
            registry=registry,
        ),
        latency=Histogram(
            "inspection_http_request_duration_seconds",
            "HTTP request latency.",
            ["path"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        ingest_latency=Histogram(
            "inspection_ingest_duration_seconds",
            "Time to store and decide one uploaded image.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        ),
        items=Counter(
            "inspection_items",
            "Inspections stored through the API, by station and route.",
            ["station", "route"],
            registry=registry,
        ),
        errors=Counter(
            "inspection_errors",
            "Errors: the deciding model failed (model) or a request was answered 5xx (http_5xx).",
            ["kind"],
            registry=registry,
        ),
    )


ERROR_KINDS = ("model", "http_5xx")


@functools.cache
def _shared() -> tuple[_Instruments, _WorkerMemory]:
    """Multiprocess mode: one set per process. Values live in the shared directory (registering them
    too would export them twice), and two objects of one name would overwrite each other's entry."""
    return _instruments(None), _WorkerMemory()


class ApiMetrics:
    """The metrics of one app, and the registry `/metrics` exports."""

    def __init__(self, pipeline: Pipeline) -> None:
        self.registry = CollectorRegistry()  # what /metrics exports
        self.memory: _WorkerMemory | None = None
        shared_dir = multiprocess_dir()
        if shared_dir is not None:
            sweep_dead_workers(shared_dir)
            self.instruments, self.memory = _shared()
            MultiProcessCollector(self.registry)
        else:
            # One registry per app: apps built side by side (tests) never mix their counts.
            self.instruments = _instruments(self.registry)
            ProcessCollector(registry=self.registry)
        for kind in ERROR_KINDS:  # exported as 0 from the start: "no errors", not "no data"
            self.instruments.errors.labels(kind)
        self.registry.register(QueueCollector(pipeline))
        self.registry.register(MonitorCollector(pipeline))

    def observe_request(self, *, method: str, path: str, status: int, seconds: float) -> None:
        self.instruments.requests.labels(method, path, str(status)).inc()
        self.instruments.latency.labels(path).observe(seconds)
        if status >= 500:
            self.instruments.errors.labels("http_5xx").inc()
        if self.memory is not None:
            self.memory.refresh()

    def count_item(self, *, station: str, route: str, model_error: bool = False) -> None:
        self.instruments.items.labels(station, route).inc()
        if model_error:
            self.instruments.errors.labels("model").inc()

    def before_scrape(self) -> None:
        if self.memory is not None:
            self.memory.refresh(force=True)

    def close(self) -> None:
        """At the app's shutdown: in multiprocess mode this worker's live gauges (memory) leave the
        export; its counters stay, since totals must not drop when a worker is replaced."""
        shared_dir = multiprocess_dir()
        if shared_dir is not None:
            mark_process_dead(os.getpid(), shared_dir)


class ServedBy:
    """`X-Served-By: <pid>` on every HTTP response: which worker process answered. Added only when
    several processes serve (multiprocess mode), for operators and the workers test."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.pid = str(os.getpid())  # the app is built inside the worker process (uvicorn --factory)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["X-Served-By"] = self.pid
            await send(message)

        await self.app(scope, receive, send_wrapper)


class MetricsMiddleware:
    """Pure ASGI middleware: counts and times every HTTP request under its route template (not the
    raw path, so that ids do not explode the label set)."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            path = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.observe_request(
                method=scope.get("method", ""), path=path, status=status, seconds=time.perf_counter() - start
            )
