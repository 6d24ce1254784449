"""The servicer's protobuf side: OrchestratorService requests into domain inputs, domain
results into responses. Nothing here decides anything; it only translates."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict
from enum import StrEnum
from typing import Any, TypeVar

from ragmesh.v1 import common_pb2, orchestrator_pb2
from ragmesh.vocabulary import TextDelta
from ragmesh.vocabulary.protobuf import (
    CACHE_LEVEL_PROTO,
    CONTEXT_MODE_FROM_PROTO,
    CONVERSATION_QUERY_FROM_PROTO,
    FINISH_REASON_PROTO,
    RERANK_FROM_PROTO,
    SEARCH_MODE_FROM_PROTO,
)
from ragmesh.vocabulary.values import metadata_struct
from services.common.errors import InvalidArgument
from services.orchestrator.core.domain import (
    Answer,
    CollectionSummary,
    ComponentHealth,
    Event,
    FinalEvent,
    QueryInput,
    Source,
    SourcesEvent,
    StageTimings,
    Usage,
)
from services.orchestrator.core.experiments.analysis import ExperimentReport
from services.orchestrator.core.facade import Stats
from services.orchestrator.transport.grpc.convert import (
    filter_from_proto,
    sampling_from_proto,
    turns_from_proto,
)

E = TypeVar("E", bound=StrEnum)


def _chosen(table: Mapping[Any, E], number: int, field: str) -> E | None:
    """The vocabulary member of an enum field (None when unset); InvalidArgument naming the
    field and the choices for a number the contract lacks."""
    if not number:
        return None
    found = table.get(number)
    if found is None:
        choices = ", ".join(member.name for member in table.values())
        raise InvalidArgument(f"unknown {field} {number}; use {choices}")
    return found


def query_input(request: orchestrator_pb2.QueryRequest) -> QueryInput:
    """The domain input of a QueryRequest; InvalidArgument for enum values the contract lacks."""
    options = request.options
    search_mode = SEARCH_MODE_FROM_PROTO.get(options.search_mode)
    if search_mode is None:
        raise InvalidArgument(f"unknown search_mode {options.search_mode}; use DENSE, SPARSE or HYBRID")
    return QueryInput(
        query=request.query,
        collection=request.collection,
        top_k=request.top_k,
        filters=[filter_from_proto(f, i) for i, f in enumerate(request.filters)],
        history=turns_from_proto(request.history, "history"),
        rerank=_chosen(RERANK_FROM_PROTO, options.rerank, "rerank method"),
        candidates=options.candidates,
        mmr_lambda=options.mmr_lambda if options.HasField("mmr_lambda") else None,
        sampling=sampling_from_proto(options.sampling),
        search_mode=search_mode,
        conversation_query=_chosen(CONVERSATION_QUERY_FROM_PROTO, options.conversation_query, "conversation_query"),
        context=_chosen(CONTEXT_MODE_FROM_PROTO, options.context, "context"),
        bypass_cache=options.bypass_cache,
        retrieval_only=options.retrieval_only,
        caller_id=request.context.caller_id,
        variant=request.context.experiment_variant,
    )


def source_message(source: Source) -> orchestrator_pb2.Source:
    """The message of a Source."""
    return orchestrator_pb2.Source(
        number=source.number,
        chunk_id=source.chunk_id,
        document_id=source.document_id,
        text=source.text,
        metadata=metadata_struct(source.metadata),
        score=source.score,
    )


def _usage(usage: Usage) -> common_pb2.Usage:
    return common_pb2.Usage(prompt_tokens=usage.prompt_tokens, completion_tokens=usage.completion_tokens)


def _timings(timings: StageTimings) -> orchestrator_pb2.StageTimings:
    return orchestrator_pb2.StageTimings(**asdict(timings))


def answer_message(answer: Answer) -> orchestrator_pb2.QueryResponse:
    """The QueryResponse of a folded answer."""
    return orchestrator_pb2.QueryResponse(
        answer=answer.text,
        cited_answer=answer.cited_answer,
        citations=[orchestrator_pb2.Citation(**asdict(c)) for c in answer.citations],
        citations_added=answer.citations_added,
        sources=[source_message(s) for s in answer.sources],
        usage=_usage(answer.usage),
        timings=_timings(answer.timings),
        cache=CACHE_LEVEL_PROTO[answer.cache],
        trace_id=answer.trace_id,
        experiment_variant=answer.variant,
        finish_reason=FINISH_REASON_PROTO[answer.finish_reason],
        history_turns_dropped=answer.history_turns_dropped,
        retrieval_query=answer.retrieval_query,
    )


def stream_message(event: Event) -> orchestrator_pb2.QueryStreamResponse:
    """The QueryStream message of one pipeline event."""
    if isinstance(event, SourcesEvent):
        return orchestrator_pb2.QueryStreamResponse(
            sources=orchestrator_pb2.QuerySources(
                sources=[source_message(s) for s in event.sources],
                trace_id=event.trace_id,
                cache=CACHE_LEVEL_PROTO[event.cache],
                experiment_variant=event.variant,
            )
        )
    if isinstance(event, TextDelta):
        return orchestrator_pb2.QueryStreamResponse(delta=common_pb2.TextDelta(text=event.text, tokens=event.tokens))
    assert isinstance(event, FinalEvent)
    return orchestrator_pb2.QueryStreamResponse(
        final=orchestrator_pb2.QueryFinal(
            usage=_usage(event.usage),
            timings=_timings(event.timings),
            finish_reason=FINISH_REASON_PROTO[event.finish_reason],
            history_turns_dropped=event.history_turns_dropped,
            retrieval_query=event.retrieval_query,
            citations=[orchestrator_pb2.Citation(**asdict(c)) for c in event.citations],
            citations_added=event.citations_added,
            cited_answer=event.cited_answer,
        )
    )


def collections_message(summaries: list[CollectionSummary]) -> orchestrator_pb2.OrchestratorCollectionsResponse:
    """The ListCollections response."""
    return orchestrator_pb2.OrchestratorCollectionsResponse(
        collections=[orchestrator_pb2.CollectionSummary(**asdict(s)) for s in summaries]
    )


def stats_message(stats: Stats) -> orchestrator_pb2.GetStatsResponse:
    """The GetStats response."""
    cache = orchestrator_pb2.CacheStats(
        l1_hits=stats.cache.l1_hits,
        l2_hits=stats.cache.l2_hits,
        misses=stats.cache.misses,
        l2_errors=stats.l2_errors,
        hit_rate=stats.cache.hit_rate,
        l1_entries=stats.l1_entries,
        l2_enabled=stats.l2_enabled,
    )
    components = [
        orchestrator_pb2.ComponentStats(component=name, requests=c.requests, errors=c.errors)
        for name, c in stats.components.items()
    ]
    return orchestrator_pb2.GetStatsResponse(cache=cache, components=components, queries=stats.queries)


def health_message(health: list[ComponentHealth]) -> orchestrator_pb2.CheckHealthResponse:
    """The CheckHealth response."""
    return orchestrator_pb2.CheckHealthResponse(
        components=[orchestrator_pb2.ComponentHealth(**asdict(c)) for c in health],
        all_serving=all(c.status == "SERVING" for c in health),
    )


def _set(message: Any, fields: dict[str, Any]) -> Any:
    """``message`` with the fields that are not None set (optional fields stay unset)."""
    for name, value in fields.items():
        if value is not None:
            setattr(message, name, value)
    return message


def experiment_report_message(report: ExperimentReport, chart: bytes | None) -> orchestrator_pb2.ExperimentReport:
    """The GetExperimentReport response."""
    return orchestrator_pb2.ExperimentReport(
        experiment=report.experiment,
        metric=report.metric,
        records=report.records,
        alpha=report.alpha,
        power=report.power,
        variants=[_set(orchestrator_pb2.VariantStatistics(), asdict(v)) for v in report.variants],
        comparisons=[_set(orchestrator_pb2.VariantComparison(), asdict(c)) for c in report.comparisons],
        chart_png=chart or b"",
    )
