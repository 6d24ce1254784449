"""Background work with fakes for the components and a real Redis: records and
submission (JobManager), the task bodies (resume after the cursor, per-document errors),
and the engine's retry rules run by Celery in eager mode (UNAVAILABLE retried with a
bounded count, INVALID_ARGUMENT failed at once)."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest
from celery import Celery
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ragmesh.v1 import orchestrator_pb2
from services.common.errors import InvalidArgument, NotFound, Unavailable
from services.common.tracing import tracer
from services.orchestrator.adapters.redis.guard import RedisGuard
from services.orchestrator.adapters.redis.job_store import RecordStore, StoredJob
from services.orchestrator.config import OrchestratorConfig
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import IngestProgress
from services.orchestrator.core.ingest.state import IngestBatch, IngestState
from services.orchestrator.core.jobs import NO_ENGINE, JobManager
from services.worker import work
from services.worker.config import WorkerConfig
from services.worker.runtime import Parts, WorkerRuntime
from services.worker.tasks import register_tasks
from tests.support.redis_server import RedisServer

SETTINGS = OrchestratorConfig.from_env({}).ingest


def _rpc_error(code: grpc.StatusCode) -> grpc.aio.AioRpcError:
    return grpc.aio.AioRpcError(
        code, grpc.aio.Metadata(), grpc.aio.Metadata(), details=f"fake {code.name}", debug_error_string=""
    )


class FakeIngestor:
    """Indexes one document per progress step; raises scripted errors on its first calls."""

    def __init__(self, errors: list[BaseException] | None = None) -> None:
        self.errors = list(errors or [])
        self.calls = 0
        self.indexed: list[str] = []

    async def run(
        self, batches: AsyncIterator[IngestBatch], deadline: Deadline, state: IngestState | None = None
    ) -> AsyncIterator[IngestProgress]:
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        state = state or IngestState()
        async for batch in batches:
            state.documents_total += len(batch.documents)
            for document in batch.documents:
                if not document.text:
                    state.fail(document.id, "document text is empty")
                else:
                    self.indexed.append(document.id)
                    state.documents_done += 1
                yield state.progress()
        yield state.progress(done=True)


def _request(count: int) -> orchestrator_pb2.SubmitIngestJobRequest:
    documents = [orchestrator_pb2.Document(id=f"d{i}", text="" if i == 3 else f"text {i}") for i in range(count)]
    return orchestrator_pb2.SubmitIngestJobRequest(collection="docs", documents=documents)


@pytest.fixture
def runtime(redis_server: RedisServer) -> Iterator[WorkerRuntime]:
    """A worker's event loop (no health server, no channels) with a fake ingestor."""
    config = WorkerConfig.from_env({"RAGMESH_WORKER_REDIS_URL": redis_server.url})
    runtime = WorkerRuntime(config)
    threading.Thread(target=runtime.loop.run_forever, daemon=True).start()

    async def parts() -> Parts:
        redis = RedisGuard(redis_server.url, 2.0, 0.0)
        return Parts(config, redis, RecordStore(redis), None, None, FakeIngestor(), None)  # type: ignore[arg-type]

    runtime.parts = runtime.call(parts(), 10.0)
    yield runtime
    runtime.call(runtime.parts.redis.close(), 10.0)
    runtime.loop.call_soon_threadsafe(runtime.loop.stop)


def _create_job(runtime: WorkerRuntime, count: int, cursor: int = 0) -> str:
    assert runtime.parts is not None
    job = orchestrator_pb2.IngestJob(job_id=f"job{count}{cursor}", collection="docs")
    job.progress.documents_done = cursor
    runtime.call(runtime.parts.records.create_job(StoredJob(job, cursor), _request(count).SerializeToString()), 10.0)
    return job.job_id


def _job(runtime: WorkerRuntime, job_id: str) -> orchestrator_pb2.IngestJob:
    assert runtime.parts is not None
    stored = runtime.call(runtime.parts.records.job(job_id), 10.0)
    assert stored is not None
    return stored.job


def test_a_job_succeeds_with_per_document_errors(runtime: WorkerRuntime) -> None:
    assert runtime.parts is not None
    job_id = _create_job(runtime, 6)
    assert runtime.call(work.ingest_job(runtime.parts, job_id, "w1"), 10.0) == "SUCCEEDED"
    job = _job(runtime, job_id)
    assert job.state == orchestrator_pb2.JOB_STATE_SUCCEEDED and job.progress.done
    assert (job.progress.documents_done, job.progress.documents_failed) == (5, 1)
    assert [e.document_id for e in job.progress.errors] == ["d3"]
    assert job.attempts == 1 and job.runner == "w1"
    assert runtime.call(runtime.parts.records.job_payload(job_id), 10.0) is None  # documents dropped


def test_a_redelivered_job_resumes_after_its_cursor(runtime: WorkerRuntime) -> None:
    assert runtime.parts is not None
    job_id = _create_job(runtime, 10, cursor=6)  # an earlier delivery stored d0..d5
    runtime.call(work.ingest_job(runtime.parts, job_id, "w2"), 10.0)
    assert runtime.parts.ingestor.indexed == ["d6", "d7", "d8", "d9"]  # type: ignore[attr-defined]
    assert _job(runtime, job_id).progress.documents_done == 10
    # A duplicate delivery of a finished job does nothing.
    assert runtime.call(work.ingest_job(runtime.parts, job_id, "w3"), 10.0) == "SKIPPED"


def _eager_app(runtime: WorkerRuntime, max_retries: int) -> tuple[Celery, dict[str, Any]]:
    app = Celery("test", set_as_current=False)
    app.conf.update(task_always_eager=True, task_eager_propagates=False)
    given_up: dict[str, Any] = {}

    def execute(kind: str, record_id: str, context: Any) -> str:
        assert runtime.parts is not None
        return runtime.call(work.ingest_job(runtime.parts, record_id, "eager"), 10.0)

    def give_up(kind: str, record_id: str, reason: str) -> None:
        assert runtime.parts is not None
        given_up[record_id] = reason
        runtime.call(work.fail_job(runtime.parts, record_id, reason), 10.0)

    retry = WorkerConfig.from_env({"RAGMESH_WORKER_REDIS_URL": "redis://x"}).retry
    tasks = register_tasks(app, execute, give_up, type(retry)(max_retries, 1.0))
    return app, {"tasks": tasks, "given_up": given_up}


def test_unavailable_is_retried_then_succeeds(runtime: WorkerRuntime) -> None:
    assert runtime.parts is not None
    ingestor = FakeIngestor([_rpc_error(grpc.StatusCode.UNAVAILABLE), Unavailable("retriever restarting")])
    runtime.parts.ingestor = ingestor  # type: ignore[assignment]
    _, parts = _eager_app(runtime, max_retries=3)
    job_id = _create_job(runtime, 4)
    parts["tasks"]["ragmesh.ingest_job"].apply(args=[job_id])
    job = _job(runtime, job_id)
    assert ingestor.calls == 3  # two transient failures, then success
    assert job.state == orchestrator_pb2.JOB_STATE_SUCCEEDED and job.attempts == 3
    assert not parts["given_up"]


def test_retries_are_bounded(runtime: WorkerRuntime) -> None:
    assert runtime.parts is not None
    ingestor = FakeIngestor([_rpc_error(grpc.StatusCode.RESOURCE_EXHAUSTED) for _ in range(10)])
    runtime.parts.ingestor = ingestor  # type: ignore[assignment]
    _, parts = _eager_app(runtime, max_retries=2)
    job_id = _create_job(runtime, 4)
    parts["tasks"]["ragmesh.ingest_job"].apply(args=[job_id])
    job = _job(runtime, job_id)
    assert ingestor.calls == 3  # the first try and two retries
    assert job.state == orchestrator_pb2.JOB_STATE_FAILED and "gave up after 2 retries" in job.error


def test_invalid_argument_is_not_retried(runtime: WorkerRuntime) -> None:
    assert runtime.parts is not None
    ingestor = FakeIngestor([_rpc_error(grpc.StatusCode.INVALID_ARGUMENT)])
    runtime.parts.ingestor = ingestor  # type: ignore[assignment]
    _, parts = _eager_app(runtime, max_retries=3)
    job_id = _create_job(runtime, 4)
    parts["tasks"]["ragmesh.ingest_job"].apply(args=[job_id])
    job = _job(runtime, job_id)
    assert ingestor.calls == 1
    assert job.state == orchestrator_pb2.JOB_STATE_FAILED and job.error.startswith("INVALID_ARGUMENT")


async def test_submissions_are_checked_and_need_a_broker(redis_server: RedisServer) -> None:
    manager = JobManager(redis_server.url, SETTINGS)
    redis = manager.redis
    with pytest.raises(InvalidArgument, match="at least one document"):
        await manager.submit(orchestrator_pb2.SubmitIngestJobRequest(collection="docs"))
    with pytest.raises(InvalidArgument, match="collection name"):
        await manager.submit(
            orchestrator_pb2.SubmitIngestJobRequest(collection="no way", documents=[orchestrator_pb2.Document()])
        )
    with pytest.raises(InvalidArgument, match="1 to 10000 queries"):
        await manager.submit_batch(orchestrator_pb2.SubmitQueryBatchRequest())
    with pytest.raises(NotFound):
        await manager.get("nope")
    with pytest.raises(NotFound):
        await manager.get_batch("nope", include_results=False)
    job_id = await manager.submit(_request(3))  # stored, and its task is in the ingest queue
    assert (await manager.get(job_id)).state == orchestrator_pb2.JOB_STATE_PENDING
    assert await redis.call_or_raise("llen", lambda r: r.llen("ragmesh.ingest")) == 1
    await manager.close()
    without = JobManager("", SETTINGS)
    with pytest.raises(Unavailable, match="RAGMESH_ORCHESTRATOR_REDIS_URL"):
        await without.submit(_request(1))
    assert "RAGMESH_ORCHESTRATOR_REDIS_URL" in NO_ENGINE


async def test_redis_down_makes_submit_unavailable(redis_server: RedisServer) -> None:
    manager = JobManager(redis_server.url, SETTINGS, timeout=0.5)
    redis_server.stop()
    with pytest.raises(Unavailable, match="background jobs are unavailable"):
        await manager.submit(_request(1))
    with pytest.raises(Unavailable, match="background jobs are unavailable"):
        await manager.submit_batch(orchestrator_pb2.SubmitQueryBatchRequest(queries=[orchestrator_pb2.QueryRequest()]))
    await manager.close()


def test_a_task_continues_the_submitters_trace(span_exporter: InMemorySpanExporter) -> None:
    app = Celery("test", set_as_current=False)
    app.conf.update(task_always_eager=True)
    seen: list[str] = []

    def execute(kind: str, record_id: str, context: Any) -> str:
        seen.append(format(trace.get_current_span(context).get_span_context().trace_id, "032x"))
        return "SUCCEEDED"

    retry = WorkerConfig.from_env({"RAGMESH_WORKER_REDIS_URL": "redis://x"}).retry
    tasks = register_tasks(app, execute, lambda *_: None, retry)
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
