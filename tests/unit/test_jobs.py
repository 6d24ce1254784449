"""Background work in the core, with fake components and in-memory stores: submission
checks, the job runner (resume after the cursor, per-document errors, transient errors
left PENDING), batches answered through the same facade call as a live query (tenant scope,
experiment assignment, cache scope), and the task engine's retry rules run by Celery in
eager mode (UNAVAILABLE retried a bounded number of times, INVALID_ARGUMENT failed at once)."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery
from opentelemetry import propagate, trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from ragmesh.vocabulary import CacheLevel, JobState
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, Overloaded, Unavailable
from services.common.principal import Principal, bind_principal
from services.common.tracing import tracer
from services.orchestrator.config import CoreConfig
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Document, IngestProgress, QueryInput
from services.orchestrator.core.experiments.config import ExperimentSettings
from services.orchestrator.core.facade import Orchestrator
from services.orchestrator.core.ingest.state import IngestBatch, IngestState
from services.orchestrator.core.jobs.manager import NO_ENGINE, JobManager
from services.orchestrator.core.jobs.ports import TaskKind
from services.orchestrator.core.jobs.records import IngestJobRequest, JobRecord, encode
from services.orchestrator.core.jobs.runner import JobRunner
from services.orchestrator.core.ports import Ports
from services.orchestrator.core.settings import IngestSettings
from services.orchestrator.wiring import build_core
from services.worker.config import RetrySettings
from services.worker.tasks import register_tasks
from tests.support.fake_ports import FakeEmbedder, FakeGenerator, FakeRetriever
from tests.support.fake_stores import MemoryJobStore, MemoryTaskQueue

TENANT_A = Principal("a", ("docs",), write=True)
TENANT_B = Principal("b", ("docs",), write=False)


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


def _request(count: int) -> IngestJobRequest:
    documents = tuple(Document(f"d{i}", "" if i == 3 else f"text {i}") for i in range(count))
    return IngestJobRequest("docs", documents)


async def _answer(query: QueryInput, principal: Principal) -> Any:
    raise AssertionError("no queries in these jobs")


def _runner(store: MemoryJobStore, ingestor: FakeIngestor) -> JobRunner:
    return JobRunner(store, ingestor, _answer, 2_000_000, 4)  # type: ignore[arg-type]


async def _create_job(store: MemoryJobStore, count: int, cursor: int = 0) -> str:
    job = JobRecord(f"job{count}{cursor}", "docs", progress=IngestProgress(documents_done=cursor), cursor=cursor)
    await store.create_job(job, encode(_request(count)))
    return job.job_id


async def test_a_job_succeeds_with_per_document_errors() -> None:
    store, ingestor = MemoryJobStore(), FakeIngestor()
    job_id = await _create_job(store, 6)
    assert await _runner(store, ingestor).ingest_job(job_id, "w1") is JobState.SUCCEEDED
    job = await store.job(job_id)
    assert job is not None and job.state is JobState.SUCCEEDED and job.progress.done
    assert (job.progress.documents_done, job.progress.documents_failed) == (5, 1)
    assert [e.document_id for e in job.progress.errors] == ["d3"]
    assert job.attempts == 1 and job.runner == "w1"
    assert await store.job_payload(job_id) is None  # documents dropped


async def test_a_redelivered_job_resumes_after_its_cursor() -> None:
    store, ingestor = MemoryJobStore(), FakeIngestor()
    job_id = await _create_job(store, 10, cursor=6)  # an earlier delivery stored d0..d5
    await _runner(store, ingestor).ingest_job(job_id, "w2")
    assert ingestor.indexed == ["d6", "d7", "d8", "d9"]
    job = await store.job(job_id)
    assert job is not None and job.progress.documents_done == 10
    # A duplicate delivery of a finished job does nothing.
    assert await _runner(store, ingestor).ingest_job(job_id, "w3") is None


async def test_submissions_are_checked_and_need_a_broker() -> None:
    store, queue = MemoryJobStore(), MemoryTaskQueue()
    manager = JobManager(store, queue, IngestSettings())
    with pytest.raises(InvalidArgument, match="at least one document"):
        await manager.submit(IngestJobRequest("docs", ()))
    with pytest.raises(InvalidArgument, match="collection name"):
        await manager.submit(IngestJobRequest("no way", (Document("d"),)))
    with pytest.raises(NotFound):
        await manager.get("nope")
    with pytest.raises(NotFound):
        await manager.get_batch("nope", include_results=False)
    job_id = await manager.submit(_request(3))
    assert (await manager.get(job_id)).state is JobState.PENDING
    assert queue.sent == [(TaskKind.INGEST_JOB, job_id)]
    # Without a broker nothing will change until an operator configures one: not worth retrying.
    for without in (
        JobManager(None, None, IngestSettings()),
        JobManager(store, MemoryTaskQueue(False), IngestSettings()),
    ):
        with pytest.raises(FailedPrecondition, match="RAGMESH_ORCHESTRATOR_REDIS_URL"):
            await without.submit(_request(1))
        with pytest.raises(FailedPrecondition):
            await without.get(job_id)
    assert "RAGMESH_ORCHESTRATOR_REDIS_URL" in NO_ENGINE


async def test_a_store_or_broker_outage_is_unavailable() -> None:
    store, queue = MemoryJobStore(), MemoryTaskQueue(down=True)
    manager = JobManager(store, queue, IngestSettings())
    with pytest.raises(Unavailable, match="background jobs are unavailable: the broker"):
        await manager.submit(_request(1))
    store.down = True
    with pytest.raises(Unavailable, match="background jobs are unavailable: redis is down"):
        await manager.submit(_request(1))


EXPERIMENT = """
[[experiments]]
name = "chunks"
collections = ["docs"]
[[experiments.variants]]
name = "control"
ratio = 1.0
"""


@pytest.fixture
async def core(tmp_path: Path) -> AsyncIterator[tuple[Orchestrator, MemoryJobStore]]:
    """A facade over fake components, an experiment on "docs", in-memory jobs."""
    (tmp_path / "experiments.toml").write_text(textwrap.dedent(EXPERIMENT))
    config = CoreConfig(experiments=ExperimentSettings(file=str(tmp_path / "experiments.toml")))
    store = MemoryJobStore()
    ports = Ports(FakeEmbedder(), FakeRetriever(), FakeGenerator())
    facade = build_core(config, ports=ports, jobs=(store, MemoryTaskQueue()))
    yield facade, store
    await facade.close()


async def _ingest(core: Orchestrator) -> None:
    async def batches() -> AsyncIterator[IngestBatch]:
        yield IngestBatch("docs", [Document("d", "Envoy listens on port 8080.")])

    async for _ in core.ingest(batches(), Deadline(None)):
        pass


async def _in_context(call: Any) -> Any:
    """Run ``call`` in a task of its own (a request's context, as a transport runs it)."""
    return await asyncio.create_task(call())


async def test_a_batch_is_answered_as_its_submitters_live_query(core: tuple[Orchestrator, MemoryJobStore]) -> None:
    facade, store = core

    async def submit() -> str:
        bind_principal(TENANT_A)
        await _ingest(facade)
        return await facade.submit_batch([QueryInput("Which port does Envoy listen on?", "docs")])

    batch_id = await _in_context(submit)
    assert await _in_context(lambda: facade.job_runner().query_batch(batch_id, "w1")) is JobState.SUCCEEDED
    (result,) = await store.results(batch_id)
    assert result.answer is not None and result.answer.variant == "control"
    assert [s.document_id for s in result.answer.sources] == ["d"]
    await facade.experiments.flush()
    records = await facade.experiments.store.read("chunks")  # recorded under its experiment
    assert [(r.variant, r.cache_level) for r in records] == [("control", CacheLevel.NONE)]

    async def ask(principal: Principal) -> CacheLevel:
        bind_principal(principal)
        return (await facade.answer(QueryInput("Which port does Envoy listen on?", "docs"), Deadline(None))).cache

    # The batch filled the cache for its own tenant only.
    assert await _in_context(lambda: ask(TENANT_A)) is CacheLevel.L1
    assert await _in_context(lambda: ask(TENANT_B)) is CacheLevel.NONE


async def test_a_batch_of_another_tenant_is_not_found(core: tuple[Orchestrator, MemoryJobStore]) -> None:
    facade, _ = core

    async def submit() -> str:
        bind_principal(TENANT_A)
        return await facade.submit_batch([QueryInput("q", "docs")])

    batch_id = await _in_context(submit)

    async def read() -> None:
        bind_principal(TENANT_B)
        await facade.batch(batch_id, include_results=True)

    with pytest.raises(NotFound):
        await _in_context(read)


def _eager_app(store: MemoryJobStore, ingestor: FakeIngestor, max_retries: int) -> tuple[Celery, dict[str, Any]]:
    app = Celery("test", set_as_current=False)
    app.conf.update(task_always_eager=True, task_eager_propagates=False)
    given_up: dict[str, Any] = {}
    runner = _runner(store, ingestor)
    loop = asyncio.new_event_loop()

    def execute(kind: str, record_id: str, context: Any) -> str:
        state = loop.run_until_complete(runner.ingest_job(record_id, "eager"))
        return "SKIPPED" if state is None else state.name

    def give_up(kind: str, record_id: str, reason: str) -> None:
        given_up[record_id] = reason
        loop.run_until_complete(runner.fail_job(record_id, reason))

    tasks = register_tasks(app, execute, give_up, RetrySettings(max_retries, 1.0))
    return app, {"tasks": tasks, "given_up": given_up, "loop": loop}


def _run_job(store: MemoryJobStore, ingestor: FakeIngestor, max_retries: int) -> tuple[JobRecord, dict[str, Any]]:
    _, parts = _eager_app(store, ingestor, max_retries)
    loop = parts["loop"]
    job_id = loop.run_until_complete(_create_job(store, 4))
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
