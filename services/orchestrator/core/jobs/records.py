"""Background work as domain records: an ingestion job, a query batch and its results, and
what each was submitted with. Stored by a :class:`~services.orchestrator.core.stores.JobStore`
as versioned JSON (:mod:`services.orchestrator.core.codec`); protobuf appears only at the
transports.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ragmesh.vocabulary import JobState
from services.common.principal import Principal
from services.orchestrator.core.codec import from_json, to_json
from services.orchestrator.core.domain import Answer, Chunking, Document, IngestProgress, QueryInput

#: Bumped when a record's layout changes (a record of another format is not read).
FORMAT = 1


def now() -> float:
    """Unix seconds, as the records store them."""
    return time.time()


@dataclass
class JobRecord:
    """An ingestion job: its public state plus how far its documents were processed."""

    job_id: str
    collection: str
    state: JobState = JobState.PENDING
    progress: IngestProgress = field(default_factory=IngestProgress)
    error: str = ""
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
    #: The worker running (or last running) it.
    runner: str = ""
    #: Deliveries of its task; more than one means a redelivery or a retry.
    attempts: int = 0
    #: Documents handled (indexed or rejected), in submission order: a redelivered task resumes here.
    cursor: int = 0


@dataclass(frozen=True)
class IngestJobRequest:
    """What an ingestion job was submitted with."""

    collection: str
    documents: tuple[Document, ...]
    chunking: Chunking = field(default_factory=Chunking)


@dataclass
class BatchRecord:
    """A batch of queries: its state and counters (results are stored beside it)."""

    batch_id: str
    total: int
    state: JobState = JobState.PENDING
    done: int = 0
    failed: int = 0
    error: str = ""
    created_at: float = field(default_factory=now)
    updated_at: float = field(default_factory=now)
    runner: str = ""
    attempts: int = 0


@dataclass(frozen=True)
class BatchRequest:
    """What a batch was submitted with: the queries, and who submitted them (the batch runs
    with that caller's tenant scope, collections and experiment assignment)."""

    queries: tuple[QueryInput, ...]
    principal: Principal


@dataclass(frozen=True)
class BatchResult:
    """One query's outcome: its answer, or its error (a status name and a message)."""

    index: int
    answer: Answer | None = None
    error_code: str = ""
    error: str = ""


def encode(record: JobRecord | BatchRecord | IngestJobRequest | BatchRequest | BatchResult) -> bytes:
    """A record as stored."""
    return to_json(record, FORMAT)


def decode_job(raw: bytes) -> JobRecord:
    return from_json(raw, JobRecord, FORMAT)


def decode_batch(raw: bytes) -> BatchRecord:
    return from_json(raw, BatchRecord, FORMAT)


def decode_result(raw: bytes) -> BatchResult:
    return from_json(raw, BatchResult, FORMAT)


def decode_job_request(raw: bytes) -> IngestJobRequest:
    return from_json(raw, IngestJobRequest, FORMAT)


def decode_batch_request(raw: bytes) -> BatchRequest:
    return from_json(raw, BatchRequest, FORMAT)
