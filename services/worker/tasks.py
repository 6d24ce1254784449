"""The Celery tasks: ingestion jobs, query batches and source syncs (asked for, or scheduled
by the beat with the source's name).

A task body is given by the caller of :func:`register_tasks` (the worker runs the core's
job runner on its event loop; unit tests give fakes), so the engine's rules live
here alone: transient errors retried with exponential back-off up to ``max_retries``,
anything the engine gives up on recorded as FAILED with its reason, the submitter's trace
continued from the ``traceparent`` header, and durations and outcomes counted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from celery import Celery, Task
from celery.exceptions import Reject
from opentelemetry import context as otel_context
from opentelemetry import propagate
from opentelemetry.context import Context
from opentelemetry.trace import SpanKind

from services.common.tracing import tracer
from services.orchestrator.adapters.background.celery_app import (
    BATCH_TASK,
    INGEST_TASK,
    SCHEDULED_SYNC_TASK,
    SYNC_TASK,
    TRACEPARENT,
)
from services.orchestrator.core.jobs.runner import Transient
from services.worker.config import RetrySettings
from services.worker.metrics import RETRIES, RUNNING, TASK_SECONDS, TASKS
from services.worker.runtime import HandedBack

log = logging.getLogger(__name__)
#: ``execute(kind, record id, trace context) -> final state name``; kind is one of KINDS' values
#: (for "scheduled", the record id is the source's name).
Execute = Callable[[str, str, Context], str]
#: ``give_up(kind, record id, reason)``: record a failure the engine will not retry.
GiveUp = Callable[[str, str, str], None]
KINDS = {INGEST_TASK: "ingest", BATCH_TASK: "batch", SYNC_TASK: "sync", SCHEDULED_SYNC_TASK: "scheduled"}


def register_tasks(app: Celery, execute: Execute, give_up: GiveUp, retry: RetrySettings) -> dict[str, Task]:
    """Define the tasks on ``app``; returns them by name."""
    options = _task_options(_task_class(give_up), retry)
    return {name: app.task(name=name, **options)(_body(kind, execute)) for name, kind in KINDS.items()}


def _task_class(give_up: GiveUp) -> type[Task]:
    class RagmeshTask(Task):
        """Records the engine's last word on a task that will not run again."""

        def on_failure(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
            reason = f"gave up after {self.request.retries} retries: {exc}" if isinstance(exc, Transient) else str(exc)
            give_up(KINDS[self.name], str(args[0]), reason or type(exc).__name__)

        def on_retry(self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
            RETRIES.labels(KINDS[self.name]).inc()

    return RagmeshTask


def _task_options(base: type[Task], retry: RetrySettings) -> dict[str, Any]:
    """Late acknowledgement, requeue when the worker is lost, transient errors retried with
    exponential back-off and jitter up to ``max_retries``."""
    return {
        "base": base,
        "bind": True,
        "acks_late": True,
        "reject_on_worker_lost": True,
        "autoretry_for": (Transient,),
        "retry_backoff": True,
        "retry_backoff_max": retry.backoff_max_seconds,
        "retry_jitter": True,
        "max_retries": retry.max_retries,
    }


def _body(kind: str, execute: Execute) -> Callable[..., str]:
    """A task body: continue the submitter's trace, run ``execute``, count the outcome."""

    def run(task: Task, record_id: str) -> str:
        # A worker sees custom headers as request fields; an eager call, under ``headers``.
        sent = task.request.get(TRACEPARENT) or (task.request.headers or {}).get(TRACEPARENT)
        parent = propagate.extract({TRACEPARENT: sent}) if sent else Context()
        started = time.monotonic()
        RUNNING.inc()
        state = "failed"
        try:
            with tracer().start_as_current_span(f"worker.{kind}", context=parent, kind=SpanKind.CONSUMER) as span:
                span.set_attribute("ragmesh.record_id", record_id)
                span.set_attribute("ragmesh.delivery", task.request.retries + 1)
                state = execute(kind, record_id, otel_context.get_current()).lower()
                return state
        except Transient:
            state = "retried"
            raise
        except HandedBack as error:
            state = "handed_back"  # requeued: another worker (or this one, restarted) resumes it
            raise Reject(str(error), requeue=True) from error
        finally:
            RUNNING.dec()
            TASK_SECONDS.labels(kind).observe(time.monotonic() - started)
            TASKS.labels(kind, state).inc()

    return run
