"""What the sync and async clients share: settings, metadata, request building, errors."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry import propagate

from ragmesh.client import types
from ragmesh.v1 import orchestrator_pb2

MIB = 1024 * 1024


class RagmeshError(Exception):
    """A call failed; ``code`` is the gRPC status name (e.g. "INVALID_ARGUMENT")."""

    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details


@contextlib.contextmanager
def errors_as_ragmesh() -> Iterator[None]:
    """Turn gRPC errors into RagmeshError (status name + the server's message)."""
    try:
        yield
    except grpc.RpcError as error:
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN
        details = error.details() if hasattr(error, "details") else str(error)
        raise RagmeshError(code.name, details or "") from None


@dataclass(frozen=True)
class ClientSettings:
    """Where the orchestrator is and what every call carries."""

    address: str = "127.0.0.1:8080"
    #: Seconds each call may take (its gRPC deadline); None waits as long as it takes.
    timeout: float | None = 120.0
    #: Sent as ``authorization: Bearer <key>`` when set.
    api_key: str | None = None
    #: Identifies the caller (A/B assignment, quotas).
    caller_id: str = ""
    max_message_bytes: int = 64 * MIB

    def channel_options(self) -> list[tuple[str, Any]]:
        """Message-size limits and keepalive for long streams."""
        return [
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.keepalive_time_ms", 30_000),
        ]

    def metadata(self) -> tuple[tuple[str, str], ...]:
        """The API key and the caller's trace context (so one trace spans client and mesh)."""
        carrier: dict[str, str] = {}
        propagate.inject(carrier)
        metadata = list(carrier.items())
        if self.api_key:
            metadata.append(("authorization", f"Bearer {self.api_key}"))
        return tuple(metadata)

    def call_options(self) -> dict[str, Any]:
        """Keyword arguments of every call: deadline and metadata."""
        return {"timeout": self.timeout, "metadata": self.metadata()}

    def query_request(self, query: str, collection: str, top_k: int, **options: Any) -> orchestrator_pb2.QueryRequest:
        """A QueryRequest with this client's caller id; ``options`` are QueryOptions fields
        (rerank, candidates, mmr_lambda, search_mode, max_new_tokens, temperature, seed,
        filters, bypass_cache, retrieval_only, variant)."""
        try:
            parsed = types.QueryOptions(**options)
        except TypeError as error:
            raise TypeError(f"unknown query option: {error}") from None
        return types.query_request(query, collection, top_k, self.caller_id, parsed)


def ingest_requests(
    documents: Iterable[types.Document | dict[str, Any]],
    collection: str,
    *,
    batch_size: int,
    chunk_tokens: int,
    overlap_tokens: int,
) -> Iterator[orchestrator_pb2.IngestRequest]:
    """The Ingest stream: documents in batches, collection and chunking in the first message."""
    chunking = orchestrator_pb2.ChunkingOptions(chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens)
    batch: list[orchestrator_pb2.Document] = []
    sent = False
    for document in documents:
        batch.append(types.document_message(document))
        if len(batch) >= batch_size:
            yield orchestrator_pb2.IngestRequest(collection=collection, documents=batch, chunking=chunking)
            batch, sent = [], True
    if batch or not sent:
        yield orchestrator_pb2.IngestRequest(collection=collection, documents=batch, chunking=chunking)


def submit_job_request(
    documents: Iterable[types.Document | dict[str, Any]], collection: str
) -> orchestrator_pb2.SubmitIngestJobRequest:
    """A background ingestion job of ``documents`` (collection "default" when empty)."""
    return orchestrator_pb2.SubmitIngestJobRequest(
        collection=collection or "default", documents=[types.document_message(d) for d in documents]
    )


def batch_request(
    settings: ClientSettings, queries: Iterable[orchestrator_pb2.QueryRequest | dict[str, Any]]
) -> orchestrator_pb2.SubmitQueryBatchRequest:
    """A SubmitQueryBatchRequest; a dict is ``{"query", "collection", "top_k", **options}``
    (the options of :meth:`ClientSettings.query_request`)."""
    requests = []
    for query in queries:
        if isinstance(query, orchestrator_pb2.QueryRequest):
            requests.append(query)
            continue
        fields = dict(query)
        text = fields.pop("query", "")
        requests.append(
            settings.query_request(str(text), str(fields.pop("collection", "")), int(fields.pop("top_k", 0)), **fields)
        )
    return orchestrator_pb2.SubmitQueryBatchRequest(queries=requests)


class IngestTally:
    """Folds the Ingest stream's progress messages into the final progress, with the
    errors of every message (each message carries only its own batch's errors)."""

    def __init__(self, on_progress: Callable[[types.IngestProgress], None] | None) -> None:
        self._on_progress = on_progress
        self._errors: list[tuple[str, str]] = []
        self._last: types.IngestProgress | None = None

    def add(self, message: orchestrator_pb2.IngestProgress) -> None:
        """Record one progress message and pass it to the callback."""
        self._last = types.progress(message)
        self._errors.extend(self._last.errors)
        if self._on_progress is not None:
            self._on_progress(self._last)

    def result(self) -> types.IngestProgress:
        """The last progress with every error seen."""
        assert self._last is not None, "the server ended the ingestion without a final progress message"
        return types.IngestProgress(**{**self._last.__dict__, "errors": self._errors})
