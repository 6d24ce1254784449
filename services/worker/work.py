"""The bodies of the worker's tasks: run an ingestion job or a batch of queries, keeping
the record in Redis up to date so a redelivered task resumes where the last one stopped.

Errors fall in three kinds. A bad document or a bad query is reported on its own and the
work goes on. A transient downstream error (UNAVAILABLE, RESOURCE_EXHAUSTED) leaves the
record PENDING and is raised as :class:`Transient` for the engine to retry with back-off.
Anything else fails the job (or batch) with its reason, never retried.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import grpc

from ragmesh.v1 import orchestrator_pb2
from services.common.errors import RagmeshError, status_code_for, status_for
from services.orchestrator.adapters.redis.job_store import TERMINAL, StoredJob
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Answer
from services.orchestrator.core.ingest.documents import document_problem
from services.orchestrator.core.ingest.state import IngestBatch, IngestState
from services.orchestrator.core.requests import resolve
from services.orchestrator.transport.grpc.convert import chunking_from_proto, document_from_proto, progress_to_proto
from services.orchestrator.transport.grpc.messages import answer_message, query_input
from services.worker.runtime import Parts

log = logging.getLogger(__name__)
TRANSIENT_CODES = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED)
#: A batch's record (its counters) is written after this many answers, and at the end.
BATCH_SAVE_EVERY = 20


class Transient(Exception):
    """A downstream error worth retrying later: the engine retries the task with back-off."""


def is_transient(error: BaseException) -> bool:
    """UNAVAILABLE and RESOURCE_EXHAUSTED, from a component or from Redis."""
    return status_code_for(error) in TRANSIENT_CODES


def describe(error: BaseException) -> str:
    """``CODE: message`` as a caller would see it."""
    code, message = status_for(error)
    return f"{code.name}: {message}"


async def ingest_job(parts: Parts, job_id: str, runner: str) -> str:
    """Run (or resume) an ingestion job; returns its final state's name."""
    records = parts.records
    stored, payload = await records.job(job_id), await records.job_payload(job_id)
    if stored is None or payload is None or stored.job.state in TERMINAL:
        log.info("ingestion job %s: nothing to do (unknown or finished)", job_id)
        return "SKIPPED"
    stored.job.state = orchestrator_pb2.JOB_STATE_RUNNING
    stored.job.runner = runner
    stored.job.attempts += 1  # a delivery: more than one means a redelivery or a retry
    await records.save_job(stored)
    request = orchestrator_pb2.SubmitIngestJobRequest.FromString(payload)
    try:
        await _ingest(parts, stored, request)
    except asyncio.CancelledError:
        await _hand_back(parts, stored, "handed back: the worker stopped before the end")
        raise
    except Exception as error:
        if is_transient(error):
            await _hand_back(parts, stored, f"retrying after {describe(error)}")
            raise Transient(describe(error)) from error
        await finish_job(parts, stored, describe(error))
        return "FAILED"
    await finish_job(parts, stored, "")
    return "SUCCEEDED"


async def _hand_back(parts: Parts, stored: StoredJob, reason: str) -> None:
    stored.job.state = orchestrator_pb2.JOB_STATE_PENDING
    stored.job.error = reason
    await parts.records.save_job(stored)


async def finish_job(parts: Parts, stored: StoredJob, error: str) -> None:
    """Record the end of a job (FAILED with ``error``, else SUCCEEDED), drop its documents."""
    stored.job.state = orchestrator_pb2.JOB_STATE_FAILED if error else orchestrator_pb2.JOB_STATE_SUCCEEDED
    stored.job.error = error
    stored.job.progress.done = True
    await parts.records.save_job(stored)
    await parts.records.drop_job_payload(stored.job.job_id)


async def fail_job(parts: Parts, job_id: str, error: str) -> None:
    """Fail a job that the engine gave up on (retries exhausted, time limit)."""
    stored = await parts.records.job(job_id)
    if stored is not None and stored.job.state not in TERMINAL:
        await finish_job(parts, stored, error)


async def _ingest(parts: Parts, stored: StoredJob, request: orchestrator_pb2.SubmitIngestJobRequest) -> None:
    """Index the documents after the cursor, saving progress after every stored group."""
    progress = stored.job.progress
    state = IngestState(
        documents_total=stored.cursor,
        documents_done=progress.documents_done,
        documents_failed=progress.documents_failed,
        chunks_total=progress.chunks_total,
        chunks_done=progress.chunks_done,
    )
    documents = [document_from_proto(d) for d in request.documents]
    for document in documents[: stored.cursor]:  # rebuild duplicate detection
        if document_problem(document, state.seen, parts.config.ingest.max_document_chars) is None:
            state.seen.add(document.id)

    async def batches() -> AsyncIterator[IngestBatch]:
        yield IngestBatch(request.collection, documents[stored.cursor :], chunking_from_proto(request.chunking))

    async for domain_update in parts.ingestor.run(batches(), Deadline(None), state):
        update = progress_to_proto(domain_update)
        errors = list(progress.errors) + list(update.errors)
        progress.CopyFrom(update)
        progress.ClearField("errors")
        progress.errors.extend(errors)
        progress.done = False
        stored.cursor = update.documents_done + update.documents_failed
        await parts.records.save_job(stored)


async def query_batch(parts: Parts, batch_id: str, runner: str) -> str:
    """Answer (or resume answering) a batch of queries; returns its final state's name."""
    records = parts.records
    batch, payload = await records.batch(batch_id), await records.batch_payload(batch_id)
    if batch is None or payload is None or batch.state in TERMINAL:
        log.info("query batch %s: nothing to do (unknown or finished)", batch_id)
        return "SKIPPED"
    batch.state = orchestrator_pb2.JOB_STATE_RUNNING
    batch.runner = runner
    batch.attempts += 1
    batch.error = ""
    await records.save_batch(batch)
    request = orchestrator_pb2.SubmitQueryBatchRequest.FromString(payload)
    answered = {result.index: result for result in await records.results(batch_id)}
    batch.failed = sum(1 for result in answered.values() if result.error_code)
    try:
        await _answer_all(parts, batch, request, set(answered))
    except asyncio.CancelledError:
        batch.state, batch.error = orchestrator_pb2.JOB_STATE_PENDING, "handed back: the worker stopped"
        await records.save_batch(batch)
        raise
    except Exception as error:  # noqa: BLE001 - recorded on the batch (or retried), never lost
        cause = error.exceptions[0] if isinstance(error, ExceptionGroup) else error
        if is_transient(cause):
            batch.state, batch.error = orchestrator_pb2.JOB_STATE_PENDING, f"retrying after {describe(cause)}"
            await records.save_batch(batch)
            raise Transient(describe(cause)) from cause
        batch.state, batch.error = orchestrator_pb2.JOB_STATE_FAILED, describe(cause)
        await records.save_batch(batch)
        return "FAILED"
    batch.state = orchestrator_pb2.JOB_STATE_SUCCEEDED
    await records.save_batch(batch)
    return "SUCCEEDED"


async def _answer_all(
    parts: Parts, batch: orchestrator_pb2.QueryBatch, request: orchestrator_pb2.SubmitQueryBatchRequest, skip: set[int]
) -> None:
    """Answer every query not yet answered, ``batch_concurrency`` at a time."""
    limit = asyncio.Semaphore(parts.config.batch_concurrency)
    since_save = 0

    async def one(index: int, query: orchestrator_pb2.QueryRequest) -> None:
        nonlocal since_save
        async with limit:
            result = await answer(parts, index, query)
        await parts.records.add_result(batch.batch_id, result)
        batch.failed += 1 if result.error_code else 0
        since_save += 1
        if since_save >= BATCH_SAVE_EVERY:
            since_save = 0
            await parts.records.save_batch(batch)

    async with asyncio.TaskGroup() as group:  # a transient failure cancels the rest
        for index, query in enumerate(request.queries):
            if index not in skip:
                group.create_task(one(index, query))


async def answer(parts: Parts, index: int, query: orchestrator_pb2.QueryRequest) -> orchestrator_pb2.QueryBatchResult:
    """One query's result: the answer with its sources, or its error (transient ones raise)."""
    try:
        spec = resolve(query_input(query), parts.config.defaults)
        folded = Answer()
        async for event in parts.pipeline.run(spec, Deadline(None)):
            folded.add(event)
        response = answer_message(folded)
    except (RagmeshError, grpc.aio.AioRpcError) as error:
        if is_transient(error):
            raise
        code, message = status_for(error)
        return orchestrator_pb2.QueryBatchResult(index=index, error_code=code.name, error=message)
    return orchestrator_pb2.QueryBatchResult(index=index, response=response)


async def fail_batch(parts: Parts, batch_id: str, error: str) -> None:
    """Fail a batch that the engine gave up on (retries exhausted, time limit)."""
    batch = await parts.records.batch(batch_id)
    if batch is not None and batch.state not in TERMINAL:
        batch.state, batch.error = orchestrator_pb2.JOB_STATE_FAILED, error
        await parts.records.save_batch(batch)
