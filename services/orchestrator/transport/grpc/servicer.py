"""gRPC servicer of the orchestrator: protobuf in, :class:`Orchestrator` calls, protobuf out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from ragmesh.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from services.common.slot import BackendSlot
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.facade import Orchestrator
from services.orchestrator.core.ingest.state import IngestBatch
from services.orchestrator.transport.grpc.convert import chunking_from_proto, document_from_proto, progress_to_proto
from services.orchestrator.transport.grpc.documents import document_message, documents_message
from services.orchestrator.transport.grpc.jobs import batch_message, batch_queries, job_message, job_request
from services.orchestrator.transport.grpc.messages import (
    answer_message,
    collections_message,
    experiment_report_message,
    health_message,
    query_input,
    stats_message,
    stream_message,
)
from services.orchestrator.transport.grpc.sources import source_message, status_message

SERVICE_NAME = orchestrator_pb2.DESCRIPTOR.services_by_name["OrchestratorService"].full_name
Context = grpc.aio.ServicerContext[Any, Any]


def _deadline(context: Context) -> Deadline:
    return Deadline(context.time_remaining())


class OrchestratorServicer(orchestrator_pb2_grpc.OrchestratorServiceServicer):
    """Translates OrchestratorService RPCs to the orchestrator engine."""

    def __init__(self, orchestrator: BackendSlot[Orchestrator]) -> None:
        self.slot = orchestrator

    async def Query(self, request: orchestrator_pb2.QueryRequest, context: Context) -> orchestrator_pb2.QueryResponse:
        return answer_message(await self.slot.get().answer(query_input(request), _deadline(context)))

    async def QueryStream(
        self, request: orchestrator_pb2.QueryRequest, context: Context
    ) -> AsyncIterator[orchestrator_pb2.QueryStreamResponse]:
        engine = self.slot.get()
        spec = engine.resolve(query_input(request))
        async for event in engine.query(spec, _deadline(context)):
            yield stream_message(event)

    async def Ingest(
        self, request_iterator: AsyncIterator[orchestrator_pb2.IngestRequest], context: Context
    ) -> AsyncIterator[orchestrator_pb2.IngestProgress]:
        engine = self.slot.get()

        async def batches() -> AsyncIterator[IngestBatch]:
            async for message in request_iterator:
                documents = [document_from_proto(d) for d in message.documents]
                yield IngestBatch(
                    message.collection,
                    documents,
                    chunking_from_proto(message.chunking),
                    sync_source_prefix=message.sync_source_prefix,
                )

        async for progress in engine.ingest(batches(), _deadline(context)):
            yield progress_to_proto(progress)

    async def SubmitIngestJob(
        self, request: orchestrator_pb2.SubmitIngestJobRequest, context: Context
    ) -> orchestrator_pb2.SubmitIngestJobResponse:
        job_id = await self.slot.get().submit_job(job_request(request))
        return orchestrator_pb2.SubmitIngestJobResponse(job_id=job_id)

    async def GetIngestJob(
        self, request: orchestrator_pb2.GetIngestJobRequest, context: Context
    ) -> orchestrator_pb2.IngestJob:
        return job_message(await self.slot.get().job(request.job_id))

    async def WatchIngestJob(
        self, request: orchestrator_pb2.GetIngestJobRequest, context: Context
    ) -> AsyncIterator[orchestrator_pb2.IngestJob]:
        async for job in self.slot.get().watch_job(request.job_id):
            yield job_message(job)

    async def SubmitQueryBatch(
        self, request: orchestrator_pb2.SubmitQueryBatchRequest, context: Context
    ) -> orchestrator_pb2.SubmitQueryBatchResponse:
        batch_id = await self.slot.get().submit_batch(batch_queries(request))
        return orchestrator_pb2.SubmitQueryBatchResponse(batch_id=batch_id)

    async def GetQueryBatch(
        self, request: orchestrator_pb2.GetQueryBatchRequest, context: Context
    ) -> orchestrator_pb2.QueryBatch:
        return batch_message(*await self.slot.get().batch(request.batch_id, request.include_results))

    async def DeleteDocuments(
        self, request: orchestrator_pb2.DeleteDocumentsRequest, context: Context
    ) -> orchestrator_pb2.DeleteDocumentsResponse:
        deleted, version = await self.slot.get().delete_documents(
            request.collection, list(request.document_ids), _deadline(context)
        )
        return orchestrator_pb2.DeleteDocumentsResponse(chunks_deleted=deleted, collection_version=version)

    async def SetDocumentAccess(
        self, request: orchestrator_pb2.SetDocumentAccessRequest, context: Context
    ) -> orchestrator_pb2.SetDocumentAccessResponse:
        updated, version = await self.slot.get().set_document_access(
            request.collection, list(request.document_ids), list(request.access), _deadline(context)
        )
        return orchestrator_pb2.SetDocumentAccessResponse(chunks_updated=updated, collection_version=version)

    async def ListSources(
        self, request: orchestrator_pb2.ListSourcesRequest, context: Context
    ) -> orchestrator_pb2.ListSourcesResponse:
        return orchestrator_pb2.ListSourcesResponse(sources=[source_message(s) for s in self.slot.get().sources()])

    async def GetSourceStatus(
        self, request: orchestrator_pb2.GetSourceStatusRequest, context: Context
    ) -> orchestrator_pb2.GetSourceStatusResponse:
        return status_message(*await self.slot.get().source_status(request.name))

    async def SyncSource(
        self, request: orchestrator_pb2.SyncSourceRequest, context: Context
    ) -> orchestrator_pb2.SyncSourceResponse:
        return orchestrator_pb2.SyncSourceResponse(job_id=await self.slot.get().sync_source(request.name))

    async def ListDocuments(
        self, request: orchestrator_pb2.OrchestratorServiceListDocumentsRequest, context: Context
    ) -> orchestrator_pb2.OrchestratorServiceListDocumentsResponse:
        page = (request.page_size, request.page_token)
        found, token = await self.slot.get().list_documents(
            request.collection, page, request.name_contains, _deadline(context)
        )
        return documents_message(found, token)

    async def GetDocument(
        self, request: orchestrator_pb2.GetDocumentRequest, context: Context
    ) -> orchestrator_pb2.GetDocumentResponse:
        return document_message(
            await self.slot.get().get_document(request.collection, request.document_id, _deadline(context))
        )

    async def ListCollections(
        self, request: orchestrator_pb2.OrchestratorCollectionsRequest, context: Context
    ) -> orchestrator_pb2.OrchestratorCollectionsResponse:
        return collections_message(await self.slot.get().collections(_deadline(context)))

    async def Feedback(
        self, request: orchestrator_pb2.FeedbackRequest, context: Context
    ) -> orchestrator_pb2.FeedbackResponse:
        experiment, variant = await self.slot.get().feedback(request.trace_id, request.rating, dict(request.relevance))
        return orchestrator_pb2.FeedbackResponse(experiment=experiment, experiment_variant=variant)

    async def GetExperimentReport(
        self, request: orchestrator_pb2.ExperimentReportRequest, context: Context
    ) -> orchestrator_pb2.ExperimentReport:
        report, chart = await self.slot.get().experiment_report(
            request.experiment,
            request.metric or "latency_ms",
            exclude_cache_hits=request.exclude_cache_hits,
            include_forced=request.include_forced,
            chart=request.chart,
        )
        return experiment_report_message(report, chart)

    async def GetStats(
        self, request: orchestrator_pb2.GetStatsRequest, context: Context
    ) -> orchestrator_pb2.GetStatsResponse:
        return stats_message(self.slot.get().stats())

    async def CheckHealth(
        self, request: orchestrator_pb2.CheckHealthRequest, context: Context
    ) -> orchestrator_pb2.CheckHealthResponse:
        return health_message(await self.slot.get().health())
