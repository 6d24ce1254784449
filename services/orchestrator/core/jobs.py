"""Background work as seen from the orchestrator: ingestion jobs and query batches are
stored as records in Redis and sent as Celery tasks to the worker component
(services/worker/); GET and watch read the records the workers keep up to date.

The orchestrator runs no job itself: queueing, late acknowledgement, redelivery after a
worker died and retries are the engine's. Without Redis there is no engine, and
submitting answers UNAVAILABLE saying so; queries do not need it.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import TypeVar

from celery import Celery
from opentelemetry import propagate

from ragmesh.v1 import orchestrator_pb2
from services.common.errors import InvalidArgument, NotFound, Unavailable
from services.orchestrator.adapters.background.celery_app import (
    BATCH_TASK,
    INGEST_TASK,
    TRACEPARENT,
    EngineSettings,
    make_app,
)
from services.orchestrator.adapters.redis.guard import RedisGuard
from services.orchestrator.adapters.redis.job_store import TERMINAL, RecordStore, StoredJob, now
from services.orchestrator.config import IngestSettings
from services.orchestrator.core.requests import check_collection, check_job_id

T = TypeVar("T")
WATCH_POLL_SECONDS = 0.3
MAX_BATCH_QUERIES = 10_000
NO_ENGINE = "background jobs need a broker: set RAGMESH_ORCHESTRATOR_REDIS_URL and run `python -m services.worker`"


class JobManager:
    """Submits ingestion jobs and query batches to the engine and reads their records."""

    def __init__(self, redis_url: str, settings: IngestSettings, timeout: float = 5.0) -> None:
        # A guard of its own: the answer cache's is tuned for 100 ms lookups, while a job's
        # payload (up to MAX_DOCUMENTS documents) takes longer to write; no back-off either.
        self.redis = RedisGuard(redis_url, timeout, 0.0)
        self.records = RecordStore(self.redis)
        self.settings = settings
        self.app: Celery | None = (
            make_app(EngineSettings(redis_url, socket_timeout_seconds=timeout), "ragmesh-orchestrator")
            if redis_url
            else None
        )

    def _engine(self) -> Celery:
        if self.app is None:
            raise Unavailable(NO_ENGINE)
        return self.app

    async def submit(self, request: orchestrator_pb2.SubmitIngestJobRequest, owner: str = "") -> str:
        """Store a job and send its task; returns its id (prefixed by ``owner``, the tenant's tag)."""
        check_collection(request.collection)
        if not request.documents:
            raise InvalidArgument("documents is empty; a job needs at least one document")
        if len(request.documents) > self.settings.max_documents:
            raise InvalidArgument(f"{len(request.documents)} documents; the limit is {self.settings.max_documents}")
        app = self._engine()
        job = orchestrator_pb2.IngestJob(
            job_id=owned_id(owner),
            collection=request.collection,
            state=orchestrator_pb2.JOB_STATE_PENDING,
            progress=orchestrator_pb2.IngestProgress(documents_total=len(request.documents)),
            created_at=now(),
            updated_at=now(),
        )
        await _engine_call(self.records.create_job(StoredJob(job), request.SerializeToString()))
        await _send(app, INGEST_TASK, job.job_id)
        return job.job_id

    async def get(self, job_id: str) -> orchestrator_pb2.IngestJob:
        """The job's current state; NotFound for an unknown id."""
        check_job_id(job_id)
        self._engine()
        stored = await _engine_call(self.records.job(job_id))
        if stored is None:
            raise NotFound(f"no ingestion job with id {job_id!r}")
        return stored.job

    async def watch(self, job_id: str) -> AsyncIterator[orchestrator_pb2.IngestJob]:
        """The job's state whenever it changes, until it finishes."""
        last: bytes | None = None
        while True:
            job = await self.get(job_id)
            encoded = job.SerializeToString()
            if encoded != last:
                last = encoded
                yield job
            if job.state in TERMINAL:
                return
            await asyncio.sleep(WATCH_POLL_SECONDS)

    async def submit_batch(self, request: orchestrator_pb2.SubmitQueryBatchRequest, owner: str = "") -> str:
        """Store a batch of queries and send its task; returns its id (prefixed by ``owner``)."""
        if not 1 <= len(request.queries) <= MAX_BATCH_QUERIES:
            raise InvalidArgument(f"a batch holds 1 to {MAX_BATCH_QUERIES} queries, got {len(request.queries)}")
        app = self._engine()
        batch = orchestrator_pb2.QueryBatch(
            batch_id=owned_id(owner),
            state=orchestrator_pb2.JOB_STATE_PENDING,
            total=len(request.queries),
            created_at=now(),
            updated_at=now(),
        )
        await _engine_call(self.records.create_batch(batch, request.SerializeToString()))
        await _send(app, BATCH_TASK, batch.batch_id)
        return batch.batch_id

    async def get_batch(self, batch_id: str, include_results: bool) -> orchestrator_pb2.QueryBatch:
        """A batch's progress, with every stored result when asked; NotFound for an unknown id."""
        if not batch_id:
            raise InvalidArgument("batch_id is empty")
        self._engine()
        batch = await _engine_call(self.records.batch(batch_id))
        if batch is None:
            raise NotFound(f"no query batch with id {batch_id!r}")
        if include_results:
            batch.results.extend(await _engine_call(self.records.results(batch_id)))
        return batch

    async def close(self) -> None:
        """Release the engine's connection pool and the records' Redis client."""
        if self.app is not None:
            self.app.close()
        await self.redis.close()


def owned_id(owner: str) -> str:
    """A new job or batch id; with an owner tag, ``<tag>-<random>`` so that reads can be
    limited to the tenant that submitted it."""
    return f"{owner}-{uuid.uuid4().hex}" if owner else uuid.uuid4().hex


async def _engine_call(operation: Awaitable[T]) -> T:
    """Await a record operation, naming the engine in the error when Redis is away."""
    try:
        return await operation
    except Unavailable as error:
        raise Unavailable(f"background jobs are unavailable: {error.message}") from error


async def _send(app: Celery, task: str, record_id: str) -> None:
    """Send a task carrying the current trace context; UNAVAILABLE when the broker is away."""
    headers: dict[str, str] = {}
    propagate.inject(headers)
    try:
        await asyncio.to_thread(
            app.send_task, task, args=[record_id], headers={TRACEPARENT: headers.get(TRACEPARENT, "")}, retry=False
        )
    except Exception as error:
        raise Unavailable(f"background jobs are unavailable: the broker did not take the task ({error})") from error
