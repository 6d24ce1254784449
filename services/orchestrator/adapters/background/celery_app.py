"""The Celery application both sides share: the orchestrator sends tasks with it, the
worker runs them. One place holds the engine's delivery settings, so the two agree.

Delivery: a task is acknowledged only after it returned (``acks_late``), a worker that
dies mid-task leaves its message unacknowledged (``reject_on_worker_lost``), and Redis
hands an unacknowledged message to another worker once ``visibility_timeout`` passed.
Each worker takes one message at a time (``prefetch_multiplier=1``): a dying worker
holds back at most the task it was running.
"""

from __future__ import annotations

from dataclasses import dataclass

from celery import Celery

from services.orchestrator.core.jobs.ports import TaskKind

#: Task names by the core's task kinds (the orchestrator sends by name: it never imports
#: the task bodies).
TASK_NAMES = {
    TaskKind.INGEST_JOB: "ragmesh.ingest_job",
    TaskKind.QUERY_BATCH: "ragmesh.query_batch",
    TaskKind.SOURCE_SYNC: "ragmesh.source_sync",
}
INGEST_TASK = TASK_NAMES[TaskKind.INGEST_JOB]
BATCH_TASK = TASK_NAMES[TaskKind.QUERY_BATCH]
SYNC_TASK = TASK_NAMES[TaskKind.SOURCE_SYNC]
#: Sent by the beat (Celery beat, redbeat schedule) with the source's name.
SCHEDULED_SYNC_TASK = "ragmesh.scheduled_sync"
#: Queues (each a Redis list of the same name: its LLEN is the queue depth).
INGEST_QUEUE = "ragmesh.ingest"
QUERY_QUEUE = "ragmesh.query"
QUEUES = (INGEST_QUEUE, QUERY_QUEUE)
#: The W3C trace context travels in this task header.
TRACEPARENT = "traceparent"


@dataclass(frozen=True)
class EngineSettings:
    """The delivery settings of the engine."""

    broker_url: str
    #: A message not acknowledged this long after delivery goes to another worker.
    visibility_timeout_seconds: float = 3600.0
    #: How often a worker looks for such messages.
    restore_interval_seconds: float = 10.0
    #: Bound on connecting to Redis and on each Redis call.
    socket_timeout_seconds: float = 5.0
    #: On SIGTERM, running tasks get this long to finish before they are handed back.
    soft_shutdown_seconds: float = 25.0


def make_app(settings: EngineSettings, name: str = "ragmesh") -> Celery:
    """A Celery app on Redis (broker and result backend) with ragmesh's delivery rules."""
    app = Celery(name, broker=settings.broker_url, backend=settings.broker_url, set_as_current=False)
    transport = {
        "visibility_timeout": settings.visibility_timeout_seconds,
        "unacked_restore_interval": settings.restore_interval_seconds,
        "socket_timeout": settings.socket_timeout_seconds,
        "socket_connect_timeout": settings.socket_timeout_seconds,
        "health_check_interval": 10,
    }
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options=transport,
        result_backend_transport_options=transport,
        redis_socket_timeout=settings.socket_timeout_seconds,
        redis_socket_connect_timeout=settings.socket_timeout_seconds,
        task_routes={
            INGEST_TASK: {"queue": INGEST_QUEUE},
            BATCH_TASK: {"queue": QUERY_QUEUE},
            SYNC_TASK: {"queue": INGEST_QUEUE},
            SCHEDULED_SYNC_TASK: {"queue": INGEST_QUEUE},
        },
        task_default_queue=INGEST_QUEUE,
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_expires=86_400,
        # The submitter must not hang when Redis is down: one try, then UNAVAILABLE.
        task_publish_retry=False,
        # A worker keeps reconnecting while Redis is down and resumes when it is back.
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_soft_shutdown_timeout=settings.soft_shutdown_seconds,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_track_started=True,
    )
    return app
