"""Where experiments meet the query path: a query is assigned a variant, the variant's
settings override the request before it is checked, and the outcome of every assigned
query (latency, time to first token, tokens, cache level, error) is recorded."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

from ragmesh.vocabulary import CacheLevel, ContextMode, RerankMethod, SearchMode, TextDelta
from services.common.errors import status_of
from services.common.tracing import current_trace_id
from services.orchestrator.core.domain import Event, FinalEvent, QueryInput, SourcesEvent
from services.orchestrator.core.experiments.assignment import Assignment
from services.orchestrator.core.experiments.manager import Experiments, QueryOutcome


def apply_variant(request: QueryInput, assignment: Assignment) -> QueryInput:
    """``request`` with the variant's settings in place of the caller's (variants win)."""
    settings = assignment.settings
    overrides: dict[str, Any] = dict(settings.query_overrides())
    if "rerank" in overrides:
        overrides["rerank"] = RerankMethod(overrides["rerank"])
    if "search_mode" in overrides:
        overrides["search_mode"] = SearchMode(overrides["search_mode"])
    if "context" in overrides:
        overrides["context"] = ContextMode(overrides["context"])
    sampling = settings.sampling_overrides()
    if sampling:
        overrides["sampling"] = dataclasses.replace(request.sampling, **sampling)
    return dataclasses.replace(request, variant=assignment.variant, **overrides)


class _Outcome:
    """What one query's events told about it."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.ttft_ms: float | None = None
        self.cache = CacheLevel.NONE
        self.prompt_tokens = self.completion_tokens = 0
        self.trace_id = current_trace_id()

    def see(self, event: Event) -> None:
        if isinstance(event, SourcesEvent):
            self.cache, self.trace_id = event.cache, event.trace_id or self.trace_id
        elif isinstance(event, TextDelta) and self.ttft_ms is None:
            self.ttft_ms = (time.perf_counter() - self.started) * 1000
        elif isinstance(event, FinalEvent):
            self.prompt_tokens, self.completion_tokens = event.usage.prompt_tokens, event.usage.completion_tokens

    def outcome(self, error_code: str) -> QueryOutcome:
        latency = (time.perf_counter() - self.started) * 1000
        return QueryOutcome(
            self.trace_id, latency, self.ttft_ms, self.prompt_tokens, self.completion_tokens, self.cache, error_code
        )


async def recorded(
    events: AsyncIterator[Event], experiments: Experiments, assignment: Assignment
) -> AsyncGenerator[Event, None]:
    """``events`` passed through, the query's outcome recorded when they end (however)."""
    seen = _Outcome()
    error_code = ""
    try:
        async for event in events:
            seen.see(event)
            yield event
    except GeneratorExit:
        error_code = "CANCELLED"
        raise
    except BaseException as error:  # recorded as the caller sees it, then re-raised
        error_code = status_of(error).value
        raise
    finally:
        experiments.record_soon(assignment, seen.outcome(error_code))
