"""The worker's Prometheus metrics: queue depth (the autoscaling signal), task durations,
tasks by outcome, retries."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

import redis
from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

log = logging.getLogger(__name__)

TASK_SECONDS = Histogram(
    "ragmesh_worker_task_seconds",
    "Time one delivery of a task ran, by task",
    ["task"],
    buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
TASKS = Counter(
    "ragmesh_worker_tasks_total",
    "Task deliveries by outcome (succeeded, failed, retried, handed_back, skipped)",
    ["task", "state"],
)
RETRIES = Counter("ragmesh_worker_task_retries_total", "Retries scheduled after transient errors", ["task"])
RUNNING = Gauge("ragmesh_worker_tasks_running", "Tasks this worker is running now")


class QueueDepth(Collector):
    """``ragmesh_worker_queue_depth{queue}``: LLEN of each Celery queue, read at scrape time."""

    def __init__(self, url: str, queues: Sequence[str], timeout: float = 1.0) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self.queues = queues

    def collect(self) -> Iterable[GaugeMetricFamily]:
        family = GaugeMetricFamily("ragmesh_worker_queue_depth", "Messages waiting in each queue", labels=["queue"])
        try:
            with self.client.pipeline() as pipe:
                for queue in self.queues:
                    pipe.llen(queue)
                depths = pipe.execute()
        except redis.RedisError as error:  # Redis away: no sample rather than a failed scrape
            log.debug("queue depth unavailable: %s", error)
            return [family]
        for queue, depth in zip(self.queues, depths, strict=True):
            family.add_metric([queue], float(depth))
        return [family]


def register_queue_depth(url: str, queues: Sequence[str]) -> QueueDepth:
    """Add the queue-depth collector to the default registry."""
    collector = QueueDepth(url, queues)
    REGISTRY.register(collector)
    return collector
