"""What the core needs besides the components: shared state and background work, as small
protocols over domain types. :mod:`services.orchestrator.adapters.redis` implements the
stores over Redis, :mod:`services.orchestrator.adapters.background` the task queue over
Celery, :mod:`services.orchestrator.adapters.components` the monitor; the unit tests use
in-memory fakes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from services.orchestrator.core.domain import ComponentHealth
from services.orchestrator.core.jobs.records import BatchRecord, BatchResult, JobRecord


class SharedAnswers(Protocol):
    """The answer cache's second level, shared by every replica."""

    @property
    def enabled(self) -> bool:
        """Whether a shared store is configured at all."""
        ...

    @property
    def errors(self) -> int:
        """Calls that failed (each one a miss to the caller)."""
        ...

    async def get(self, key: str) -> bytes | None:
        """The stored answer, or None (a miss, or a failure counted in ``errors``)."""
        ...

    async def put(self, key: str, value: bytes, ttl_seconds: int) -> None:
        """Store an answer; a failure is counted, never raised."""
        ...


class CollectionVersions(Protocol):
    """Per-collection version numbers that every ingest and delete bumps."""

    async def get(self, collection: str) -> str:
        """The version as a cache-key component."""
        ...

    async def bump(self, collection: str) -> int:
        """Record a change to ``collection``; returns its new version number."""
        ...

    def number(self, collection: str) -> int:
        """The version to show callers."""
        ...

    def start(self) -> None:
        """Start any background work (publishing, listening to other replicas)."""
        ...

    async def close(self) -> None:
        """Stop the background work."""
        ...


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


@dataclass
class CallCounts:
    """Calls to one component and how many failed (counted as they happen)."""

    requests: int = 0
    errors: int = 0


class Monitor(Protocol):
    """The components as an operator sees them: health and call counts."""

    def call_counts(self) -> Mapping[str, CallCounts]:
        """Calls per component since this replica started."""
        ...

    async def health(self) -> list[ComponentHealth]:
        """Each component's health."""
        ...
