"""Ingestion jobs with a fake ingestor: success, hand-over after a replica dies, giving up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from ragmesh.v1 import orchestrator_pb2
from services.common.errors import InvalidArgument, NotFound, Unavailable
from services.orchestrator.config import OrchestratorConfig
from services.orchestrator.deadline import Deadline
from services.orchestrator.domain import IngestProgress
from services.orchestrator.ingest import IngestBatch, IngestState
from services.orchestrator.job_store import JobStore, MemoryJobStore, RedisJobStore
from services.orchestrator.jobs import JobManager
from services.orchestrator.redis_store import RedisGuard
from tests.support.redis_server import RedisServer

SETTINGS = OrchestratorConfig.from_env(
    {"RAGMESH_ORCHESTRATOR_JOB_LEASE_SECONDS": "1", "RAGMESH_ORCHESTRATOR_JOB_MAX_ATTEMPTS": "2"}
).ingest


class FakeIngestor:
    """Indexes one document per progress step, slowly; can be told to fail."""

    def __init__(self, delay: float = 0.05, fail_with: Exception | None = None) -> None:
        self.delay = delay
        self.fail_with = fail_with
        self.indexed: list[str] = []

    async def run(
        self, batches: AsyncIterator[IngestBatch], deadline: Deadline, state: IngestState | None = None
    ) -> AsyncIterator[IngestProgress]:
        state = state or IngestState()
        async for batch in batches:
            state.documents_total += len(batch.documents)
            for document in batch.documents:
                if self.fail_with is not None:
                    raise self.fail_with
                await asyncio.sleep(self.delay)
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


async def _finished(manager: JobManager, job_id: str) -> orchestrator_pb2.IngestJob:
    async with asyncio.timeout(60):  # a job that never ends fails the test instead of hanging it
        states = [job async for job in manager.watch(job_id)]
    return states[-1]


async def _until_indexed(ingestor: FakeIngestor, count: int) -> None:
    async with asyncio.timeout(60):
        while len(ingestor.indexed) < count:
            await asyncio.sleep(0.05)


def _manager(store: JobStore, ingestor: FakeIngestor) -> JobManager:
    return JobManager(store, ingestor, SETTINGS)  # type: ignore[arg-type]


async def test_a_job_runs_to_success_and_reports_bad_documents() -> None:
    ingestor = FakeIngestor()
    manager = _manager(MemoryJobStore(), ingestor)
    manager.start()
    job_id = await manager.submit(_request(6))
    job = await _finished(manager, job_id)
    await manager.stop()
    assert job.state == orchestrator_pb2.JOB_STATE_SUCCEEDED
    assert (job.progress.documents_done, job.progress.documents_failed) == (5, 1)
    assert [e.document_id for e in job.progress.errors] == ["d3"]
    assert ingestor.indexed == ["d0", "d1", "d2", "d4", "d5"]
    assert job.attempts == 1 and job.runner == manager.owner


async def test_bad_submissions_and_unknown_ids() -> None:
    manager = _manager(MemoryJobStore(), FakeIngestor())
    with pytest.raises(InvalidArgument, match="at least one document"):
        await manager.submit(orchestrator_pb2.SubmitIngestJobRequest(collection="docs"))
    with pytest.raises(InvalidArgument, match="collection name"):
        await manager.submit(
            orchestrator_pb2.SubmitIngestJobRequest(collection="no way", documents=[orchestrator_pb2.Document()])
        )
    with pytest.raises(NotFound):
        await manager.get("nope")


async def test_a_failing_job_is_failed_with_its_reason() -> None:
    manager = _manager(MemoryJobStore(), FakeIngestor(fail_with=Unavailable("the embedder is down")))
    manager.start()
    job = await _finished(manager, await manager.submit(_request(2)))
    await manager.stop()
    assert job.state == orchestrator_pb2.JOB_STATE_FAILED
    assert "the embedder is down" in job.error


async def test_another_replica_resumes_a_job_whose_replica_died(redis_server: RedisServer) -> None:
    dying_ingestor, survivor_ingestor = FakeIngestor(delay=0.2), FakeIngestor(delay=0.01)
    dying = _manager(RedisJobStore(RedisGuard(redis_server.url, 0.5, 0.0)), dying_ingestor)
    survivor = _manager(RedisJobStore(RedisGuard(redis_server.url, 0.5, 0.0)), survivor_ingestor)
    dying.start()
    job_id = await dying.submit(_request(20))
    await _until_indexed(dying_ingestor, 3)
    for task in dying._tasks:  # the replica "dies": no clean hand-over, its lease just lapses
        task.cancel()
    survivor.start()
    job = await _finished(survivor, job_id)
    await survivor.stop()
    assert job.state == orchestrator_pb2.JOB_STATE_SUCCEEDED
    assert job.attempts == 2 and job.runner == survivor.owner
    assert (job.progress.documents_done, job.progress.documents_failed) == (19, 1)
    done_before_death = set(dying_ingestor.indexed)
    assert done_before_death | set(survivor_ingestor.indexed) == {f"d{i}" for i in range(20) if i != 3}
    assert not done_before_death & set(survivor_ingestor.indexed[1:])  # resumed, not restarted


async def test_a_job_whose_replicas_keep_dying_is_failed_not_left_running(redis_server: RedisServer) -> None:
    store = RedisJobStore(RedisGuard(redis_server.url, 0.5, 0.0))
    reaper = _manager(store, FakeIngestor())
    job_id = await reaper.submit(_request(4))
    for attempt in (1, 2):  # claim it twice and "die" each time
        assert await store.claim_next(f"dead-{attempt}", lease=0.2) == job_id
        stored = await store.get(job_id)
        assert stored is not None
        stored.job.state = orchestrator_pb2.JOB_STATE_RUNNING
        stored.job.attempts = attempt
        await store.save(stored)
        await asyncio.sleep(0.3)
        await reaper.reap_once()  # what the reaper task runs every half lease
        job = await reaper.get(job_id)
        if attempt == 1:
            assert job.state == orchestrator_pb2.JOB_STATE_PENDING
            assert "the replica running it stopped" in job.error
    assert job.state == orchestrator_pb2.JOB_STATE_FAILED
    assert "gave up after 2 attempts" in job.error
    assert await store.orphans(lease=0.2) == []


async def test_a_clean_shutdown_hands_a_running_job_over_without_counting_an_attempt(
    redis_server: RedisServer,
) -> None:
    leaving_ingestor, staying_ingestor = FakeIngestor(delay=0.2), FakeIngestor(delay=0.01)
    leaving = _manager(RedisJobStore(RedisGuard(redis_server.url, 0.5, 0.0)), leaving_ingestor)
    staying = _manager(RedisJobStore(RedisGuard(redis_server.url, 0.5, 0.0)), staying_ingestor)
    leaving.start()
    job_id = await leaving.submit(_request(20))
    await _until_indexed(leaving_ingestor, 2)
    await leaving.stop()  # SIGTERM: the job goes back to the queue at once, not after its lease
    handed_over = await staying.get(job_id)
    assert handed_over.state == orchestrator_pb2.JOB_STATE_PENDING
    assert "its replica shut down" in handed_over.error
    assert handed_over.attempts == 0
    staying.start()
    job = await _finished(staying, job_id)
    await staying.stop()
    assert job.state == orchestrator_pb2.JOB_STATE_SUCCEEDED
    assert job.attempts == 1 and job.runner == staying.owner


class _LeaseLosingStore(MemoryJobStore):
    """Renews leases until told to lose them; then, in the same step, the replica is asked to
    stop — the interleaving that once made ``stop`` wait forever."""

    def __init__(self) -> None:
        super().__init__()
        self.lose_lease = asyncio.Event()
        self.manager: JobManager | None = None
        self.stopping: asyncio.Task[None] | None = None

    async def renew(self, job_id: str, owner: str, lease: float) -> bool:
        await self.lose_lease.wait()
        assert self.manager is not None
        # The heartbeat cancels the ingestion when this returns False; the stop that
        # starts now cancels the worker before it has seen the ingestion end.
        self.stopping = asyncio.ensure_future(self.manager.stop())
        return False


async def test_stop_ends_when_the_lease_is_lost_at_the_same_moment() -> None:
    store = _LeaseLosingStore()
    ingestor = FakeIngestor(delay=0.05)
    manager = _manager(store, ingestor)
    store.manager = manager
    manager.start()
    await manager.submit(_request(50))
    await _until_indexed(ingestor, 1)
    store.lose_lease.set()
    async with asyncio.timeout(30):  # before the fix this waited forever
        while store.stopping is None:
            await asyncio.sleep(0.01)
        await store.stopping
    assert all(task.done() for task in manager._tasks)
