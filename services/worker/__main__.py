"""``python -m services.worker``: run a Celery worker (solo pool) for ragmesh's tasks,
with a grpc.health.v1 server and Prometheus metrics, until SIGTERM.

SIGTERM starts Celery's warm shutdown (no new task is taken) and a grace timer: a task
still running when ``RAGMESH_WORKER_SOFT_SHUTDOWN_SECONDS`` pass is cancelled, records
its progress and is requeued (``Reject(requeue=True)``) for another worker to resume.
"""

from __future__ import annotations

import logging
import os
import socket
import sys
import threading
from typing import Any

from celery import signals
from opentelemetry.context import Context

from services.common.logs import configure_logging
from services.common.metrics import start_metrics_server
from services.common.server import StartupError, config_or_exit, exit_after_clean_stop
from services.common.tracing import setup_tracing, shutdown_tracing
from services.orchestrator.adapters.background.celery_app import make_app
from services.worker.config import WorkerConfig
from services.worker.metrics import register_queue_depth
from services.worker.runtime import WorkerRuntime
from services.worker.tasks import register_tasks

log = logging.getLogger("services.worker")


def _warn_about_limits(config: WorkerConfig) -> None:
    if config.task_time_limit_seconds > config.engine.visibility_timeout_seconds:
        log.warning(
            "RAGMESH_WORKER_TASK_TIME_LIMIT_SECONDS (%.0f) exceeds RAGMESH_WORKER_VISIBILITY_TIMEOUT_SECONDS (%.0f): "
            "a task running longer than the visibility timeout is delivered to a second worker as well",
            config.task_time_limit_seconds,
            config.engine.visibility_timeout_seconds,
        )


def _celery_argv(config: WorkerConfig) -> list[str]:
    return [
        "worker",
        "--pool=solo",  # see docs/worker.md: asyncio bodies, one task per process
        "--concurrency=1",
        f"--queues={','.join(config.queues)}",
        f"--hostname=worker-{os.getpid()}@%h",
        f"--loglevel={config.server.log_level.upper()}",
        "--without-mingle",
        "--without-gossip",
    ]


def run_worker(config: WorkerConfig) -> None:
    """Start the runtime, register the tasks and consume until shutdown."""
    _warn_about_limits(config)
    runtime = WorkerRuntime(config)
    runtime.start()
    runner = f"{socket.gethostname()}:{os.getpid()}"

    def execute(kind: str, record_id: str, context: Context) -> str:
        jobs, sources = runtime.jobs(), runtime.sources()
        bodies = {
            "ingest": jobs.ingest_job,
            "batch": jobs.query_batch,
            "sync": sources.run_job,
            "scheduled": sources.run_scheduled,
        }
        state = runtime.call(bodies[kind](record_id, runner), config.task_time_limit_seconds, context, task=True)
        return "SKIPPED" if state is None else state.name

    def give_up(kind: str, record_id: str, reason: str) -> None:
        if kind == "scheduled":  # no record of its own: the next tick tries again
            log.warning("scheduled sync of %s given up: %s", record_id, reason)
            return
        jobs = runtime.jobs()
        fail = jobs.fail_batch if kind == "batch" else jobs.fail_job
        try:
            runtime.call(fail(record_id, reason), 30.0)
        except Exception:
            log.exception("could not record the failure of %s %s", kind, record_id)

    app = make_app(config.engine, "ragmesh-worker")
    register_tasks(app, execute, give_up, config.retry)

    @signals.worker_ready.connect(weak=False)
    def broker_connected(**_: Any) -> None:
        runtime.broker_ready.set()

    @signals.worker_shutting_down.connect(weak=False)
    def start_grace_timer(**_: Any) -> None:
        timer = threading.Timer(config.engine.soft_shutdown_seconds, runtime.hand_back)
        timer.daemon = True
        timer.start()

    try:
        app.worker_main(_celery_argv(config))
    finally:
        runtime.stop()


def main() -> None:
    """Read the config, serve metrics and health, run the worker."""
    config = config_or_exit(WorkerConfig.from_env)
    configure_logging(config.server.log_level)
    setup_tracing("worker")
    metrics_server = start_metrics_server(config.server.metrics_host, config.server.metrics_port)
    register_queue_depth(config.engine.broker_url, config.queues)
    try:
        run_worker(config)
    except StartupError as error:
        print(f"worker failed to start: {error}", file=sys.stderr)
        sys.exit(1)
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
        shutdown_tracing()
    exit_after_clean_stop()


if __name__ == "__main__":
    main()
