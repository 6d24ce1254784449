"""Running background work (the worker calls these through the core's facade): an ingestion
job or a batch of queries, keeping its record up to date so that a redelivered task resumes
where the last one stopped.

Errors fall in three kinds. A bad document or a bad query is reported on its own and the
work goes on. A transient error (UNAVAILABLE, RESOURCE_EXHAUSTED) leaves the record PENDING
and is raised as :class:`Transient` for the task engine to retry with back-off. Anything else
fails the job (or batch) with its reason, never retried.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from ragmesh.vocabulary import JobState
from services.common.errors import RagmeshError, public_message, status_of
from services.common.principal import Principal
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Answer, IngestProgress, QueryInput
from services.orchestrator.core.ingest.documents import document_problem
from services.orchestrator.core.ingest.ingestor import Ingestor
from services.orchestrator.core.ingest.state import IngestBatch, IngestState
from services.orchestrator.core.jobs.ports import JobStore
from services.orchestrator.core.jobs.records import (
    BatchRecord,
    BatchResult,
    JobRecord,
    decode_batch_request,
    decode_job_request,
)

log = logging.getLogger(__name__)
#: A batch's record (its counters) is written after this many answers, and at the end.
BATCH_SAVE_EVERY = 20
#: Answers one query for a principal, exactly as a live query is answered.
AnswerOne = Callable[[QueryInput, Principal], Awaitable[Answer]]


class Transient(Exception):
    """A downstream error worth retrying later: the engine retries the task with back-off."""


def describe(error: BaseException) -> str:
    """``CODE: message`` as a caller would see it."""
    return f"{status_of(error).value}: {public_message(error, '')}"


class JobRunner:
    """Runs ingestion jobs and query batches recorded in ``store``."""

    def __init__(
        self, store: JobStore, ingestor: Ingestor, answer: AnswerOne, max_document_chars: int, concurrency: int
    ) -> None:
        self.store = store
        self.ingestor = ingestor
        self.answer_one = answer
        self.max_document_chars = max_document_chars
        self.concurrency = concurrency

    async def ingest_job(self, job_id: str, runner: str) -> JobState | None:
        """Run (or resume) an ingestion job; its final state (None: unknown or finished)."""
        job, payload = await self.store.job(job_id), await self.store.job_payload(job_id)
        if job is None or payload is None or job.state.terminal:
            log.info("ingestion job %s: nothing to do (unknown or finished)", job_id)
            return None
        job.state, job.runner, job.attempts = JobState.RUNNING, runner, job.attempts + 1
        await self.store.save_job(job)
        try:
            await self._ingest(job, payload)
        except asyncio.CancelledError:
            await self._job_pending(job, "handed back: the worker stopped before the end")
            raise
        except Exception as error:
            if status_of(error).transient:
                await self._job_pending(job, f"retrying after {describe(error)}")
                raise Transient(describe(error)) from error
            await self.finish_job(job, describe(error))
            return JobState.FAILED
        await self.finish_job(job, "")
        return JobState.SUCCEEDED

    async def _job_pending(self, job: JobRecord, reason: str) -> None:
        job.state, job.error = JobState.PENDING, reason
        await self.store.save_job(job)

    async def finish_job(self, job: JobRecord, error: str) -> None:
        """Record the end of a job (FAILED with ``error``, else SUCCEEDED), drop its documents."""
        job.state = JobState.FAILED if error else JobState.SUCCEEDED
        job.error = error
        job.progress = _with(job.progress, done=True)
        await self.store.save_job(job)
        await self.store.drop_job_payload(job.job_id)

    async def fail_job(self, job_id: str, error: str) -> None:
        """Fail a job that the engine gave up on (retries exhausted, time limit)."""
        job = await self.store.job(job_id)
        if job is not None and not job.state.terminal:
            await self.finish_job(job, error)

    async def _ingest(self, job: JobRecord, payload: bytes) -> None:
        """Index the documents after the cursor, saving progress after every stored group."""
        request = decode_job_request(payload)
        done = job.progress
        state = IngestState(job.cursor, done.documents_done, done.documents_failed, done.chunks_total, done.chunks_done)
        documents = list(request.documents)
        for document in documents[: job.cursor]:  # rebuild duplicate detection
            if document_problem(document, state.seen, self.max_document_chars) is None:
                state.seen.add(document.id)

        async def batches() -> AsyncIterator[IngestBatch]:
            yield IngestBatch(request.collection, documents[job.cursor :], request.chunking)

        async for update in self.ingestor.run(batches(), Deadline(None), state):
            job.progress = _with(update, errors=job.progress.errors + update.errors, done=False)
            job.cursor = update.documents_done + update.documents_failed
            await self.store.save_job(job)

    async def query_batch(self, batch_id: str, runner: str) -> JobState | None:
        """Answer (or resume answering) a batch of queries; its final state (None: nothing to do)."""
        batch, payload = await self.store.batch(batch_id), await self.store.batch_payload(batch_id)
        if batch is None or payload is None or batch.state.terminal:
            log.info("query batch %s: nothing to do (unknown or finished)", batch_id)
            return None
        batch.state, batch.runner, batch.attempts, batch.error = JobState.RUNNING, runner, batch.attempts + 1, ""
        await self.store.save_batch(batch)
        answered = {result.index: result for result in await self.store.results(batch_id)}
        batch.failed = sum(1 for result in answered.values() if result.error_code)
        try:
            await self._answer_all(batch, payload, set(answered))
        except asyncio.CancelledError:
            await self._batch_state(batch, JobState.PENDING, "handed back: the worker stopped")
            raise
        except Exception as error:  # noqa: BLE001 - recorded on the batch (or retried), never lost
            cause = error.exceptions[0] if isinstance(error, ExceptionGroup) else error
            if status_of(cause).transient:
                await self._batch_state(batch, JobState.PENDING, f"retrying after {describe(cause)}")
                raise Transient(describe(cause)) from cause
            await self._batch_state(batch, JobState.FAILED, describe(cause))
            return JobState.FAILED
        await self._batch_state(batch, JobState.SUCCEEDED, "")
        return JobState.SUCCEEDED

    async def _batch_state(self, batch: BatchRecord, state: JobState, error: str) -> None:
        batch.state, batch.error = state, error
        await self.store.save_batch(batch)

    async def _answer_all(self, batch: BatchRecord, payload: bytes, skip: set[int]) -> None:
        """Answer every query not yet answered, ``concurrency`` at a time."""
        request = decode_batch_request(payload)
        limit = asyncio.Semaphore(self.concurrency)
        since_save = 0

        async def one(index: int, query: QueryInput) -> None:
            nonlocal since_save
            async with limit:
                result = await self._answer(index, query, request.principal)
            await self.store.add_result(batch.batch_id, result)
            batch.failed += 1 if result.error_code else 0
            since_save += 1
            if since_save >= BATCH_SAVE_EVERY:
                since_save = 0
                await self.store.save_batch(batch)

        async with asyncio.TaskGroup() as group:  # a transient failure cancels the rest
            for index, query in enumerate(request.queries):
                if index not in skip:
                    group.create_task(one(index, query))

    async def _answer(self, index: int, query: QueryInput, principal: Principal) -> BatchResult:
        """One query's result: the answer with its sources, or its error (transient ones raise)."""
        try:
            return BatchResult(index, await self.answer_one(query, principal))
        except RagmeshError as error:
            if error.code.transient:
                raise
            return BatchResult(index, error_code=error.code.value, error=error.message)

    async def fail_batch(self, batch_id: str, error: str) -> None:
        """Fail a batch that the engine gave up on (retries exhausted, time limit)."""
        batch = await self.store.batch(batch_id)
        if batch is not None and not batch.state.terminal:
            await self._batch_state(batch, JobState.FAILED, error)


def _with(progress: IngestProgress, **changes: Any) -> IngestProgress:
    """``progress`` with some fields changed."""
    return dataclasses.replace(progress, **changes)
