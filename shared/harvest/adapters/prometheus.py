"""ports.Metrics on prometheus_client, and the gauges read from the database at scrape time.

Counters and histograms live in this process and move as work happens (one registry per
`harvest serve`, never prometheus_client's global one, so tests and embedded stacks do not share
series). Gauges that describe shared state (jobs per status and phase, queue depth and age, dead
letters) are read from the database at each scrape, so every process of a scaled-out deployment
reports the same truth and a restart loses nothing.

docs/operations.md lists every family, what it means and when to alert on it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from harvest.domain.job import TOPIC_FINALIZE, TOPIC_WORK
from harvest.ports import Operations

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
KNOWN_TOPICS = frozenset({TOPIC_WORK, TOPIC_FINALIZE})
# API answers take milliseconds; a Create under write contention can take a few hundred.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
THROUGHPUT_BUCKETS = tuple(float(mb * 1024 * 1024) for mb in (0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500))
CHUNK_SECONDS_BUCKETS = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0)


def _topic(name: str) -> str:
    return name if name in KNOWN_TOPICS else "other"


class PrometheusMetrics:
    """ports.Metrics recorded into its own CollectorRegistry; `exposition()` is the /metrics body."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self._jobs_created = Counter("harvest_jobs_created", "Jobs created (API or live event)", registry=r)
        self._jobs_finished = Counter(
            "harvest_jobs_finished", "Jobs that ended, by final status", ["status"], registry=r
        )
        self._segments = Counter(
            "harvest_segments_harvested", "Segments fetched and stored (done chunks)", registry=r
        )
        self._bytes = Counter("harvest_bytes_harvested", "Bytes fetched and stored (done chunks)", registry=r)
        self._chunk_seconds = Histogram(
            "harvest_chunk_duration_seconds",
            "Time from a chunk's start to its completion",
            buckets=CHUNK_SECONDS_BUCKETS,
            registry=r,
        )
        self._chunk_throughput = Histogram(
            "harvest_chunk_throughput_bytes_per_second",
            "Bytes per second of each completed chunk",
            buckets=THROUGHPUT_BUCKETS,
            registry=r,
        )
        self._origin_errors = Counter(
            "harvest_origin_errors",
            "Failed origin requests, by resource (playlist, segment) and kind (http_503, read_timeout, ...)",
            ["resource", "kind"],
            registry=r,
        )
        self._origin_retries = Counter(
            "harvest_origin_retries", "Origin requests tried again after a failure", ["resource"], registry=r
        )
        self._dead_lettered = Counter(
            "harvest_messages_dead_lettered",
            "Queue messages that used up their attempts, by topic",
            ["topic"],
            registry=r,
        )
        self._callbacks = Counter(
            "harvest_callbacks", "CallbackURL deliveries, by outcome", ["outcome"], registry=r
        )
        self._api_requests = Counter(
            "harvest_api_requests", "API requests, by action and answer code", ["action", "code"], registry=r
        )
        self._api_latency = Histogram(
            "harvest_api_request_duration_seconds",
            "API request handling time, by action",
            ["action"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        ProcessCollector(registry=r)

    # --- ports.Metrics ---------------------------------------------------------------------------

    def job_created(self) -> None:
        self._jobs_created.inc()

    def job_finished(self, status: str) -> None:
        self._jobs_finished.labels(status=status).inc()

    def harvested(self, segments: int, nbytes: int, seconds: float | None = None) -> None:
        self._segments.inc(segments)
        self._bytes.inc(nbytes)
        if seconds is not None and seconds > 0:
            self._chunk_seconds.observe(seconds)
            self._chunk_throughput.observe(nbytes / seconds)

    def origin_error(self, resource: str, kind: str, retried: bool) -> None:
        self._origin_errors.labels(resource=resource, kind=kind).inc()
        if retried:
            self._origin_retries.labels(resource=resource).inc()

    def dead_lettered(self, topic: str) -> None:
        self._dead_lettered.labels(topic=_topic(topic)).inc()

    def callback(self, outcome: str) -> None:
        self._callbacks.labels(outcome=outcome).inc()

    def api_request(self, action: str, code: str, seconds: float) -> None:
        self._api_requests.labels(action=action, code=code).inc()
        self._api_latency.labels(action=action).observe(seconds)

    # --- exposition ------------------------------------------------------------------------------

    def watch(self, operations: Operations, clock: Callable[[], float] = time.time) -> None:
        """Also report the database's view (jobs, queue, dead letters) at every scrape."""
        self.registry.register(StateCollector(operations, clock))

    def watch_downloads(self, limit: Callable[[], int], most: int) -> None:
        """Also report the download pool's limit (adaptive: it moves; see usecases/download_limit)."""
        Gauge(
            "harvest_download_limit",
            "Segment downloads this process lets run at once now (moves when HARVEST_DOWNLOAD_ADAPTIVE)",
            registry=self.registry,
        ).set_function(limit)
        Gauge(
            "harvest_download_limit_max",
            "The most segment downloads this process runs at once (HARVEST_DOWNLOAD_CONCURRENCY)",
            registry=self.registry,
        ).set(most)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


class StateCollector(Collector):
    """Gauges read from the database at scrape time; a scrape never fails because the database did."""

    def __init__(self, operations: Operations, clock: Callable[[], float]) -> None:
        self._operations = operations
        self._clock = clock

    def describe(self) -> Iterator[Metric]:
        return iter(())  # the families are only known by collecting; registration must not query

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("harvest_database_up", "1 when the last scrape could read the database")
        try:
            families = list(self._families())
        except Exception:
            log.exception("metrics scrape could not read the database")
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _families(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily(
            "harvest_jobs", "Jobs in the database, by status and phase", labels=["status", "phase"]
        )
        for (status, phase), count in sorted(self._operations.job_counts().items()):
            jobs.add_metric([status, phase], count)
        yield jobs
        depth = GaugeMetricFamily(
            "harvest_queue_depth",
            "Queue messages waiting (ready) or in hand (leased)",
            labels=["topic", "state"],
        )
        age = GaugeMetricFamily(
            "harvest_queue_oldest_message_age_seconds",
            "Age of the oldest message not yet done (0 when none)",
            labels=["topic"],
        )
        dead = GaugeMetricFamily(
            "harvest_dead_letters", "Dead-lettered messages now in the queue", labels=["topic"]
        )
        seen = {topic: False for topic in sorted(KNOWN_TOPICS)}
        for state in self._operations.topics(self._clock()):
            topic = _topic(state.topic)
            seen[topic] = True
            depth.add_metric([topic, "ready"], state.ready)
            depth.add_metric([topic, "leased"], state.leased)
            age.add_metric([topic], state.oldest_age)
            dead.add_metric([topic], state.dead)
        for topic, present in seen.items():
            if not present:  # an empty topic still reports zeros, so alerts see 0 rather than no data
                depth.add_metric([topic, "ready"], 0)
                depth.add_metric([topic, "leased"], 0)
                age.add_metric([topic], 0)
                dead.add_metric([topic], 0)
        yield depth
        yield age
        yield dead
