"""What background work needs: a store of job and batch records (Redis, in
:mod:`services.orchestrator.adapters.redis.job_store`) and a task queue (Celery, in
:mod:`services.orchestrator.adapters.background.queue`). The unit tests use in-memory fakes."""

from __future__ import annotations

from enum import StrEnum
from typing import Protocol

from services.orchestrator.core.jobs.records import BatchRecord, BatchResult, JobRecord


class JobStore(Protocol):
    """Records of background work (ingestion jobs, query batches) and their payloads.
    Every failure raises Unavailable."""

    async def create_job(self, job: JobRecord, payload: bytes) -> None: ...
    async def job(self, job_id: str) -> JobRecord | None: ...
    async def save_job(self, job: JobRecord) -> None: ...
    async def job_payload(self, job_id: str) -> bytes | None: ...
    async def drop_job_payload(self, job_id: str) -> None: ...
    async def create_batch(self, batch: BatchRecord, payload: bytes) -> None: ...
    async def batch(self, batch_id: str) -> BatchRecord | None:
        """The record with ``done`` counted from its stored results."""
        ...

    async def save_batch(self, batch: BatchRecord) -> None: ...
    async def batch_payload(self, batch_id: str) -> bytes | None: ...
    async def add_result(self, batch_id: str, result: BatchResult) -> None: ...
    async def results(self, batch_id: str) -> list[BatchResult]:
        """Every stored result of a batch, by index."""
        ...

    async def ping(self) -> bool:
        """Whether the store answers."""
        ...

    async def close(self) -> None: ...


class TaskKind(StrEnum):
    """The kinds of background task the core hands to the task engine."""

    INGEST_JOB = "ingest_job"
    QUERY_BATCH = "query_batch"
    SOURCE_SYNC = "source_sync"


class TaskQueue(Protocol):
    """Hands background work to the task engine (the worker component runs it)."""

    @property
    def configured(self) -> bool:
        """Whether a task engine (broker) is configured."""
        ...

    async def send(self, kind: TaskKind, record_id: str) -> None:
        """Queue the task for the record; Unavailable when the broker does not take it."""
        ...

    async def close(self) -> None: ...
