"""The OpenAI-compatible API's responses: domain results built into OpenAI's shapes, and
domain errors into OpenAI's error body and HTTP status."""

from __future__ import annotations

import time
from dataclasses import asdict
from typing import Any

from ragmesh.vocabulary import FinishReason
from services.common import errors
from services.common.tracing import current_trace_id
from services.orchestrator.core.domain import Answer, FinalEvent, Source, Usage

MODEL_ID = "ragmesh"
_FINISH = {FinishReason.LENGTH: "length", FinishReason.CANCELLED: "stop"}
#: OpenAI's error ``type`` of each status (the HTTP status itself is the status's own).
_ERROR_TYPES = {
    errors.Status.INVALID_ARGUMENT: "invalid_request_error",
    errors.Status.FAILED_PRECONDITION: "invalid_request_error",
    errors.Status.UNAUTHENTICATED: "authentication_error",
    errors.Status.PERMISSION_DENIED: "permission_error",
    errors.Status.NOT_FOUND: "not_found_error",
    errors.Status.RESOURCE_EXHAUSTED: "rate_limit_error",
    errors.Status.UNAVAILABLE: "service_unavailable_error",
    errors.Status.DEADLINE_EXCEEDED: "timeout_error",
}


def source_json(source: Source) -> dict[str, Any]:
    """A source as the API returns it."""
    return asdict(source)


def usage_json(usage: Usage) -> dict[str, int]:
    """Usage as OpenAI reports it."""
    total = usage.prompt_tokens + usage.completion_tokens
    return {"prompt_tokens": usage.prompt_tokens, "completion_tokens": usage.completion_tokens, "total_tokens": total}


def finish_json(reason: FinishReason) -> str:
    """OpenAI's finish reason."""
    return _FINISH.get(reason, "stop")


def completion_json(answer: Answer, completion_id: str, created: int) -> dict[str, Any]:
    """The non-streamed ``chat.completion`` object, with the sources."""
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": MODEL_ID,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text},
                "finish_reason": finish_json(answer.finish_reason),
            }
        ],
        "usage": usage_json(answer.usage),
        "sources": [source_json(s) for s in answer.sources],
        "ragmesh": {
            "cache": answer.cache.value,
            "trace_id": answer.trace_id,
            "timings_ms": asdict(answer.timings),
            "citations": [asdict(c) for c in answer.citations],
            "citations_added": answer.citations_added,
            "cited_answer": answer.cited_answer,
        },
    }


def final_json(event: FinalEvent) -> dict[str, Any]:
    """ragmesh's extension of the last streamed chunk: stage timings, citations, the cited answer."""
    return {
        "timings_ms": asdict(event.timings),
        "citations": [asdict(c) for c in event.citations],
        "citations_added": event.citations_added,
        "cited_answer": event.cited_answer,
    }


def chunk_json(completion_id: str, created: int, delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    """One ``chat.completion.chunk``."""
    return {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": MODEL_ID,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def models_json() -> dict[str, Any]:
    """The ``GET /v1/models`` list."""
    return {"object": "list", "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "ragmesh"}]}


def error_json(error: BaseException) -> tuple[int, dict[str, Any], dict[str, str]]:
    """(HTTP status, OpenAI error body, extra headers) for ``error``."""
    status = errors.status_of(error)
    kind = _ERROR_TYPES.get(status, "server_error")
    if kind == "server_error":
        status = errors.Status.INTERNAL
    message = errors.public_message(error, current_trace_id())  # logs an unexpected error with its trace id
    headers = {"Retry-After": "1"} if status is errors.Status.RESOURCE_EXHAUSTED else {}
    body = {"message": message, "type": kind, "param": getattr(error, "param", None), "code": None}
    return status.http, {"error": body}, headers


def now() -> int:
    """Unix seconds, for ``created``."""
    return int(time.time())
