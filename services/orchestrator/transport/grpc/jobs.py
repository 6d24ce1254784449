"""Background work between protobuf and the core's records: job and batch submissions in,
:class:`JobRecord` / :class:`BatchRecord` out as the contract's IngestJob and QueryBatch."""

from __future__ import annotations

from collections.abc import Sequence

from ragmesh.v1 import orchestrator_pb2
from ragmesh.vocabulary.protobuf import JOB_STATE_PROTO
from services.orchestrator.core.domain import QueryInput
from services.orchestrator.core.jobs.records import BatchRecord, BatchResult, IngestJobRequest, JobRecord
from services.orchestrator.transport.grpc.convert import chunking_from_proto, document_from_proto, progress_to_proto
from services.orchestrator.transport.grpc.messages import answer_message, query_input


def job_request(request: orchestrator_pb2.SubmitIngestJobRequest) -> IngestJobRequest:
    """The domain request of SubmitIngestJob."""
    return IngestJobRequest(
        request.collection,
        tuple(document_from_proto(d) for d in request.documents),
        chunking_from_proto(request.chunking),
    )


def batch_queries(request: orchestrator_pb2.SubmitQueryBatchRequest) -> list[QueryInput]:
    """The queries of SubmitQueryBatch (InvalidArgument names an enum value the contract lacks)."""
    return [query_input(query) for query in request.queries]


def job_message(job: JobRecord) -> orchestrator_pb2.IngestJob:
    """The contract's IngestJob of a record."""
    return orchestrator_pb2.IngestJob(
        job_id=job.job_id,
        collection=job.collection,
        state=JOB_STATE_PROTO[job.state],
        progress=progress_to_proto(job.progress),
        error=job.error,
        created_at=job.created_at,
        updated_at=job.updated_at,
        runner=job.runner,
        attempts=job.attempts,
    )


def _result_message(result: BatchResult) -> orchestrator_pb2.QueryBatchResult:
    message = orchestrator_pb2.QueryBatchResult(index=result.index, error_code=result.error_code, error=result.error)
    if result.answer is not None:
        message.response.CopyFrom(answer_message(result.answer))
    return message


def batch_message(batch: BatchRecord, results: Sequence[BatchResult]) -> orchestrator_pb2.QueryBatch:
    """The contract's QueryBatch of a record and the results asked for."""
    return orchestrator_pb2.QueryBatch(
        batch_id=batch.batch_id,
        state=JOB_STATE_PROTO[batch.state],
        total=batch.total,
        done=batch.done,
        failed=batch.failed,
        results=[_result_message(r) for r in results],
        error=batch.error,
        created_at=batch.created_at,
        updated_at=batch.updated_at,
        runner=batch.runner,
        attempts=batch.attempts,
    )
