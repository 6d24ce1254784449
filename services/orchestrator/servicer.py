"""gRPC servicer of the orchestrator: protobuf in, :class:`Orchestrator` calls, protobuf out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc

from ragmesh.v1 import common_pb2, orchestrator_pb2, orchestrator_pb2_grpc
from services.common.slot import BackendSlot
from services.orchestrator.clients import Deadline
from services.orchestrator.engine import Orchestrator
from services.orchestrator.ingest import IngestBatch
from services.orchestrator.pipeline import DeltaEvent, FinalEvent, SourcesEvent
from services.orchestrator.requests import build_spec

SERVICE_NAME = orchestrator_pb2.DESCRIPTOR.services_by_name["OrchestratorService"].full_name
Context = grpc.aio.ServicerContext[Any, Any]


class OrchestratorServicer(orchestrator_pb2_grpc.OrchestratorServiceServicer):
    """Translates OrchestratorService RPCs to the orchestrator engine."""

    def __init__(self, orchestrator: BackendSlot[Orchestrator]) -> None:
        self.slot = orchestrator

    async def Query(self, request: orchestrator_pb2.QueryRequest, context: Context) -> orchestrator_pb2.QueryResponse:
        engine = self.slot.get()
        spec = build_spec(request, engine.config.defaults)
        response = orchestrator_pb2.QueryResponse()
        answer: list[str] = []
        async for event in engine.query(spec, Deadline.of(context)):
            if isinstance(event, SourcesEvent):
                response.sources.extend(event.sources)
                response.cache = event.cache
                response.experiment_variant = event.variant
                response.trace_id = event.trace_id
            elif isinstance(event, DeltaEvent):
                answer.append(event.text)
            else:
                response.usage.CopyFrom(event.usage)
                response.timings.CopyFrom(event.timings)
                response.finish_reason = event.finish_reason
        response.answer = "".join(answer)
        return response

    async def QueryStream(
        self, request: orchestrator_pb2.QueryRequest, context: Context
    ) -> AsyncIterator[orchestrator_pb2.QueryStreamResponse]:
        engine = self.slot.get()
        spec = build_spec(request, engine.config.defaults)
        async for event in engine.query(spec, Deadline.of(context)):
            yield _stream_message(event)

    async def Ingest(
        self, request_iterator: AsyncIterator[orchestrator_pb2.IngestRequest], context: Context
    ) -> AsyncIterator[orchestrator_pb2.IngestProgress]:
        engine = self.slot.get()

        async def batches() -> AsyncIterator[IngestBatch]:
            async for message in request_iterator:
                yield IngestBatch(message.collection, message.documents, message.chunking)

        async for progress in engine.ingest(batches(), Deadline.of(context)):
            yield progress

    async def SubmitIngestJob(
        self, request: orchestrator_pb2.SubmitIngestJobRequest, context: Context
    ) -> orchestrator_pb2.SubmitIngestJobResponse:
        job_id = await self.slot.get().jobs.submit(request)
        return orchestrator_pb2.SubmitIngestJobResponse(job_id=job_id)

    async def GetIngestJob(
        self, request: orchestrator_pb2.GetIngestJobRequest, context: Context
    ) -> orchestrator_pb2.IngestJob:
        return await self.slot.get().jobs.get(request.job_id)

    async def WatchIngestJob(
        self, request: orchestrator_pb2.GetIngestJobRequest, context: Context
    ) -> AsyncIterator[orchestrator_pb2.IngestJob]:
        async for job in self.slot.get().jobs.watch(request.job_id):
            yield job

    async def SubmitQueryBatch(
        self, request: orchestrator_pb2.SubmitQueryBatchRequest, context: Context
    ) -> orchestrator_pb2.SubmitQueryBatchResponse:
        batch_id = await self.slot.get().jobs.submit_batch(request)
        return orchestrator_pb2.SubmitQueryBatchResponse(batch_id=batch_id)

    async def GetQueryBatch(
        self, request: orchestrator_pb2.GetQueryBatchRequest, context: Context
    ) -> orchestrator_pb2.QueryBatch:
        return await self.slot.get().jobs.get_batch(request.batch_id, request.include_results)

    async def DeleteDocuments(
        self, request: orchestrator_pb2.DeleteDocumentsRequest, context: Context
    ) -> orchestrator_pb2.DeleteDocumentsResponse:
        return await self.slot.get().delete_documents(
            request.collection, list(request.document_ids), Deadline.of(context)
        )

    async def ListCollections(self, request: Any, context: Context) -> orchestrator_pb2.OrchestratorCollectionsResponse:
        return await self.slot.get().collections(Deadline.of(context))

    async def GetStats(
        self, request: orchestrator_pb2.GetStatsRequest, context: Context
    ) -> orchestrator_pb2.GetStatsResponse:
        return self.slot.get().stats()

    async def CheckHealth(
        self, request: orchestrator_pb2.CheckHealthRequest, context: Context
    ) -> orchestrator_pb2.CheckHealthResponse:
        return await self.slot.get().health()


def _stream_message(event: SourcesEvent | DeltaEvent | FinalEvent) -> orchestrator_pb2.QueryStreamResponse:
    if isinstance(event, SourcesEvent):
        return orchestrator_pb2.QueryStreamResponse(
            sources=orchestrator_pb2.QuerySources(
                sources=event.sources,
                trace_id=event.trace_id,
                cache=event.cache,
                experiment_variant=event.variant,
            )
        )
    if isinstance(event, DeltaEvent):
        return orchestrator_pb2.QueryStreamResponse(delta=common_pb2.TextDelta(text=event.text, tokens=event.tokens))
    return orchestrator_pb2.QueryStreamResponse(
        final=orchestrator_pb2.QueryFinal(
            usage=event.usage,
            timings=event.timings,
            finish_reason=event.finish_reason,
        )
    )
