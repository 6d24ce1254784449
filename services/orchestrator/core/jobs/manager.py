"""Submitting background work and reading its records: ingestion jobs and query batches are
stored as records (a :class:`JobStore`) and handed to the task engine (a :class:`TaskQueue`);
the worker component runs them and keeps the records up to date, GET and watch read them.

Queueing, late acknowledgement, redelivery after a worker died and retries are the task
engine's. Without a broker there is no engine, and submitting or reading answers
FAILED_PRECONDITION saying so: retrying will not help until an operator configures one.
Queries do not need it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, Unavailable
from services.orchestrator.core.domain import IngestProgress
from services.orchestrator.core.jobs.ports import JobStore, TaskKind, TaskQueue
from services.orchestrator.core.jobs.records import (
    BatchRecord,
    BatchRequest,
    BatchResult,
    IngestJobRequest,
    JobRecord,
    encode,
)
from services.orchestrator.core.requests import check_collection, check_job_id
from services.orchestrator.core.settings import IngestSettings

T = TypeVar("T")
WATCH_POLL_SECONDS = 0.3
MAX_BATCH_QUERIES = 10_000
NO_ENGINE = "background jobs need a broker: set RAGMESH_ORCHESTRATOR_REDIS_URL and run `python -m services.worker`"


class JobManager:
    """Submits ingestion jobs and query batches to the engine and reads their records."""

    def __init__(self, store: JobStore | None, queue: TaskQueue | None, settings: IngestSettings) -> None:
        self.store = store
        self.queue = queue
        self.settings = settings

    def _engine(self) -> tuple[JobStore, TaskQueue]:
        if self.store is None or self.queue is None or not self.queue.configured:
            raise FailedPrecondition(NO_ENGINE)
        return self.store, self.queue

    async def submit(self, request: IngestJobRequest, owner: str = "") -> str:
        """Store a job and send its task; returns its id (prefixed by ``owner``, the tenant's tag)."""
        check_collection(request.collection)
        if not request.documents:
            raise InvalidArgument("documents is empty; a job needs at least one document")
        if len(request.documents) > self.settings.max_documents:
            raise InvalidArgument(f"{len(request.documents)} documents; the limit is {self.settings.max_documents}")
        store, queue = self._engine()
        job = JobRecord(owned_id(owner), request.collection, progress=IngestProgress(len(request.documents)))
        await _engine_call(store.create_job(job, encode(request)))
        await _engine_call(queue.send(TaskKind.INGEST_JOB, job.job_id))
        return job.job_id

    async def get(self, job_id: str) -> JobRecord:
        """The job's current state; NotFound for an unknown id."""
        check_job_id(job_id)
        store, _ = self._engine()
        job = await _engine_call(store.job(job_id))
        if job is None:
            raise NotFound(f"no ingestion job with id {job_id!r}")
        return job

    async def watch(self, job_id: str) -> AsyncIterator[JobRecord]:
        """The job's state whenever it changes, until it finishes."""
        last: JobRecord | None = None
        while True:
            job = await self.get(job_id)
            if job != last:
                last = job
                yield job
            if job.state.terminal:
                return
            await asyncio.sleep(WATCH_POLL_SECONDS)

    async def submit_batch(self, request: BatchRequest, owner: str = "") -> str:
        """Store a batch of queries and send its task; returns its id (prefixed by ``owner``)."""
        if not 1 <= len(request.queries) <= MAX_BATCH_QUERIES:
            raise InvalidArgument(f"a batch holds 1 to {MAX_BATCH_QUERIES} queries, got {len(request.queries)}")
        store, queue = self._engine()
        batch = BatchRecord(batch_id=owned_id(owner), total=len(request.queries))
        await _engine_call(store.create_batch(batch, encode(request)))
        await _engine_call(queue.send(TaskKind.QUERY_BATCH, batch.batch_id))
        return batch.batch_id

    async def get_batch(self, batch_id: str, include_results: bool) -> tuple[BatchRecord, list[BatchResult]]:
        """A batch's progress, with every stored result when asked; NotFound for an unknown id."""
        if not batch_id:
            raise InvalidArgument("batch_id is empty")
        store, _ = self._engine()
        batch = await _engine_call(store.batch(batch_id))
        if batch is None:
            raise NotFound(f"no query batch with id {batch_id!r}")
        results = await _engine_call(store.results(batch_id)) if include_results else []
        return batch, results

    async def close(self) -> None:
        """Release the engine's connections and the records' store."""
        if self.queue is not None:
            await self.queue.close()
        if self.store is not None:
            await self.store.close()


def owned_id(owner: str) -> str:
    """A new job or batch id; with an owner tag, ``<tag>-<random>`` so that reads can be
    limited to the tenant that submitted it."""
    return f"{owner}-{uuid.uuid4().hex}" if owner else uuid.uuid4().hex


async def _engine_call(operation: Awaitable[T]) -> T:
    """Await a record or queue operation, naming the engine in the error when it is away."""
    try:
        return await operation
    except Unavailable as error:
        raise Unavailable(f"background jobs are unavailable: {error.message}") from error
