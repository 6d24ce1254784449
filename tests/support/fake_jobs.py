"""Fakes for background-work tests: an ingestor that raises scripted errors, and helpers that
create job records in an in-memory store and a runner over them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from services.common.principal import Principal
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Document, IngestProgress, QueryInput
from services.orchestrator.core.ingest.state import IngestBatch, IngestState
from services.orchestrator.core.jobs.records import IngestJobRequest, JobRecord, encode
from services.orchestrator.core.jobs.runner import JobRunner
from tests.support.fake_stores import MemoryJobStore


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


def job_request(count: int) -> IngestJobRequest:
    """``count`` documents for "docs"; the fourth has no text (a per-document error)."""
    documents = tuple(Document(f"d{i}", "" if i == 3 else f"text {i}") for i in range(count))
    return IngestJobRequest("docs", documents)


async def no_answers(query: QueryInput, principal: Principal) -> Any:
    """The answer function of a runner that runs ingestion jobs only."""
    raise AssertionError("no queries in these jobs")


def runner(store: MemoryJobStore, ingestor: FakeIngestor) -> JobRunner:
    """A job runner over ``store`` whose ingestion is ``ingestor``."""
    return JobRunner(store, ingestor, no_answers, 2_000_000, 4)  # type: ignore[arg-type]


async def create_job(store: MemoryJobStore, count: int, cursor: int = 0) -> str:
    """A job of ``count`` documents, ``cursor`` of them handled by an earlier delivery."""
    job = JobRecord(f"job{count}{cursor}", "docs", progress=IngestProgress(documents_done=cursor), cursor=cursor)
    await store.create_job(job, encode(job_request(count)))
    return job.job_id
