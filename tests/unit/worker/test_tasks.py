"""The worker's Celery tasks in eager mode over the core's job runner (fake ingestor,
in-memory store): UNAVAILABLE and RESOURCE_EXHAUSTED retried a bounded number of times,
INVALID_ARGUMENT failed at once, and a task continuing its submitter's trace."""

from __future__ import annotations

import asyncio
from typing import Any

from celery import Celery
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ragmesh.vocabulary import JobState
from services.common.errors import InvalidArgument, Overloaded, Unavailable
from services.common.tracing import tracer
from services.orchestrator.core.jobs.records import JobRecord
from services.worker.config import RetrySettings
from services.worker.tasks import register_tasks
from tests.support.fake_jobs import FakeIngestor, create_job, runner
from tests.support.fake_stores import MemoryJobStore


def _eager_app(store: MemoryJobStore, ingestor: FakeIngestor, max_retries: int) -> tuple[Celery, dict[str, Any]]:
    app = Celery("test", set_as_current=False)
    app.conf.update(task_always_eager=True, task_eager_propagates=False)
    given_up: dict[str, Any] = {}
    jobs = runner(store, ingestor)
    loop = asyncio.new_event_loop()

    def execute(kind: str, record_id: str, context: Any) -> str:
        state = loop.run_until_complete(jobs.ingest_job(record_id, "eager"))
        return "SKIPPED" if state is None else state.name

    def give_up(kind: str, record_id: str, reason: str) -> None:
        given_up[record_id] = reason
        loop.run_until_complete(jobs.fail_job(record_id, reason))

    tasks = register_tasks(app, execute, give_up, RetrySettings(max_retries, 1.0))
    return app, {"tasks": tasks, "given_up": given_up, "loop": loop}


def _run_job(store: MemoryJobStore, ingestor: FakeIngestor, max_retries: int) -> tuple[JobRecord, dict[str, Any]]:
    _, parts = _eager_app(store, ingestor, max_retries)
    loop = parts["loop"]
    job_id = loop.run_until_complete(create_job(store, 4))
    parts["tasks"]["ragmesh.ingest_job"].apply(args=[job_id])
    job = loop.run_until_complete(store.job(job_id))
    loop.close()
    assert job is not None
    return job, parts


def test_unavailable_is_retried_then_succeeds() -> None:
    ingestor = FakeIngestor([Unavailable("retriever restarting"), Overloaded("queue full")])
    job, parts = _run_job(MemoryJobStore(), ingestor, max_retries=3)
    assert ingestor.calls == 3  # two transient failures, then success
    assert job.state is JobState.SUCCEEDED and job.attempts == 3
    assert not parts["given_up"]


def test_retries_are_bounded() -> None:
    ingestor = FakeIngestor([Overloaded("queue full") for _ in range(10)])
    job, _ = _run_job(MemoryJobStore(), ingestor, max_retries=2)
    assert ingestor.calls == 3  # the first try and two retries
    assert job.state is JobState.FAILED and "gave up after 2 retries" in job.error


def test_invalid_argument_is_not_retried() -> None:
    ingestor = FakeIngestor([InvalidArgument("bad chunking")])
    job, _ = _run_job(MemoryJobStore(), ingestor, max_retries=3)
    assert ingestor.calls == 1
    assert job.state is JobState.FAILED and job.error.startswith("INVALID_ARGUMENT")


def test_a_task_continues_the_submitters_trace(span_exporter: InMemorySpanExporter) -> None:
    app = Celery("test", set_as_current=False)
    app.conf.update(task_always_eager=True)
    seen: list[str] = []

    def execute(kind: str, record_id: str, context: Any) -> str:
        seen.append(format(trace.get_current_span(context).get_span_context().trace_id, "032x"))
        return "SUCCEEDED"

    tasks = register_tasks(app, execute, lambda *_: None, RetrySettings(5, 1.0))
    with tracer().start_as_current_span("submit") as parent:
        headers: dict[str, str] = {}
        propagate.inject(headers)
    tasks["ragmesh.ingest_job"].apply(args=["j1"], headers={"traceparent": headers["traceparent"]})
    trace_id = format(parent.get_span_context().trace_id, "032x")
    assert seen == [trace_id]  # the body runs in the task's span, inside the submitter's trace
    task_span = next(
        s
        for s in span_exporter.get_finished_spans()
        if s.name == "worker.ingest" and s.context.trace_id == parent.get_span_context().trace_id
    )
    assert task_span.parent is not None and task_span.parent.span_id == parent.get_span_context().span_id
