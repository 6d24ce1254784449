"""What the sync and async clients share: settings, metadata, request building, errors."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import grpc
from opentelemetry import propagate

from ragmesh.client import types
from ragmesh.v1 import orchestrator_pb2
from ragmesh.vocabulary.limits import MAX_DOCUMENTS_PER_MESSAGE

MIB = 1024 * 1024
R = TypeVar("R")


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
    #: TLS: the CA that signed Envoy's certificate (PEM file; setting any tls_* turns TLS on,
    #: the system roots are used without a CA); tls_cert + tls_key: this client's
    #: certificate for mTLS.
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None

    def credentials(self) -> grpc.ChannelCredentials | None:
        """TLS credentials from the tls_* files, or None for a cleartext channel."""
        if not (self.tls_ca or self.tls_cert or self.tls_key):
            return None
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key go together (the client certificate and its key)")

        def read(path: str | None) -> bytes | None:
            return Path(path).read_bytes() if path else None

        return grpc.ssl_channel_credentials(read(self.tls_ca), read(self.tls_key), read(self.tls_cert))

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


#: About this many bytes per Ingest message (a larger file goes alone): far under the
#: services' 64 MiB message limit, small enough to show progress on large files.
MESSAGE_BYTES = 16 * 1024 * 1024


def ingest_requests(
    documents: Iterable[types.Document | dict[str, Any]],
    collection: str,
    *,
    batch_size: int,
    chunk_tokens: int,
    overlap_tokens: int,
    sync_prefix: str = "",
) -> Iterator[orchestrator_pb2.IngestRequest]:
    """The Ingest stream, cut by the one rule every caller uses: at most ``batch_size``
    documents (and the server's MAX_DOCUMENTS_PER_MESSAGE) and about MESSAGE_BYTES a message;
    the collection, chunking and sync prefix in the first message."""
    if not 1 <= batch_size <= MAX_DOCUMENTS_PER_MESSAGE:
        raise ValueError(f"batch_size must be 1 to {MAX_DOCUMENTS_PER_MESSAGE}, got {batch_size}")
    chunking = orchestrator_pb2.ChunkingOptions(chunk_tokens=chunk_tokens, overlap_tokens=overlap_tokens)
    pending: list[orchestrator_pb2.Document] = []
    size = 0
    first = True

    def request() -> orchestrator_pb2.IngestRequest:
        nonlocal first
        message = orchestrator_pb2.IngestRequest(collection=collection, documents=pending, chunking=chunking)
        if first:
            message.sync_source_prefix = sync_prefix
        first = False
        return message

    for document in documents:
        message = types.document_message(document)
        if pending and (len(pending) >= batch_size or size + message.ByteSize() > MESSAGE_BYTES):
            yield request()
            pending, size = [], 0
        pending.append(message)
        size += message.ByteSize()
    if pending or first:
        yield request()


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


@dataclass(frozen=True)
class Call(Generic[R]):
    """One unary call as both client faces make it: the stub method, the request, and how
    the reply becomes the result (so the sync and async clients share everything but the
    ``await``)."""

    method: str
    request: Any
    parse: Callable[[Any], R]


def _identity(reply: Any) -> Any:
    return reply


def query_call(settings: ClientSettings, query: str, collection: str, top_k: int, **options: Any) -> Call[types.Answer]:
    """Query: the whole answer."""
    return Call("Query", settings.query_request(query, collection, top_k, **options), types.answer)


def delete_call(document_ids: Sequence[str], collection: str) -> Call[int]:
    """DeleteDocuments: the number of chunks removed."""
    request = orchestrator_pb2.DeleteDocumentsRequest(collection=collection or "default", document_ids=document_ids)
    return Call("DeleteDocuments", request, lambda reply: int(reply.chunks_deleted))


def collections_call() -> Call[list[orchestrator_pb2.CollectionSummary]]:
    """ListCollections: collections with their sizes and versions."""
    return Call(
        "ListCollections", orchestrator_pb2.OrchestratorCollectionsRequest(), lambda reply: list(reply.collections)
    )


def documents_call(
    collection: str, page_size: int, page_token: str, name_contains: str
) -> Call[orchestrator_pb2.OrchestratorServiceListDocumentsResponse]:
    """ListDocuments: one page of a collection's documents."""
    request = orchestrator_pb2.OrchestratorServiceListDocumentsRequest(
        collection=collection or "default", page_size=page_size, page_token=page_token, name_contains=name_contains
    )
    return Call("ListDocuments", request, _identity)


def document_call(document_id: str, collection: str) -> Call[orchestrator_pb2.GetDocumentResponse]:
    """GetDocument: a document's chunks in order."""
    request = orchestrator_pb2.GetDocumentRequest(collection=collection or "default", document_id=document_id)
    return Call("GetDocument", request, _identity)


def health_call() -> Call[orchestrator_pb2.CheckHealthResponse]:
    """CheckHealth: every component's health as the orchestrator sees it."""
    return Call("CheckHealth", orchestrator_pb2.CheckHealthRequest(), _identity)


def stats_call() -> Call[orchestrator_pb2.GetStatsResponse]:
    """GetStats: cache hit rates and per-component call counts."""
    return Call("GetStats", orchestrator_pb2.GetStatsRequest(), _identity)


def submit_job_call(documents: Iterable[types.Document | dict[str, Any]], collection: str) -> Call[str]:
    """SubmitIngestJob: the new job's id."""
    return Call("SubmitIngestJob", submit_job_request(documents, collection), lambda reply: str(reply.job_id))


def job_call(job_id: str) -> Call[orchestrator_pb2.IngestJob]:
    """GetIngestJob: the job's state and progress."""
    return Call("GetIngestJob", orchestrator_pb2.GetIngestJobRequest(job_id=job_id), _identity)


def feedback_call(trace_id: str, rating: float, relevance: dict[str, int] | None = None) -> Call[tuple[str, str]]:
    """Feedback: (experiment, variant) of the rated answer."""
    request = orchestrator_pb2.FeedbackRequest(trace_id=trace_id, rating=rating, relevance=relevance or {})
    return Call("Feedback", request, lambda reply: (reply.experiment, reply.experiment_variant))


def experiment_report_call(
    experiment: str, metric: str = "latency_ms", *, chart: bool = False, **options: bool
) -> Call[orchestrator_pb2.ExperimentReport]:
    """GetExperimentReport: statistics per variant (``options``: exclude_cache_hits, include_forced)."""
    request = orchestrator_pb2.ExperimentReportRequest(experiment=experiment, metric=metric, chart=chart, **options)
    return Call("GetExperimentReport", request, _identity)


def submit_batch_call(
    settings: ClientSettings, queries: Iterable[orchestrator_pb2.QueryRequest | dict[str, Any]]
) -> Call[str]:
    """SubmitQueryBatch: the new batch's id."""
    return Call("SubmitQueryBatch", batch_request(settings, queries), lambda reply: str(reply.batch_id))


def batch_call(batch_id: str, include_results: bool = False) -> Call[orchestrator_pb2.QueryBatch]:
    """GetQueryBatch: progress and, with ``include_results``, every answer (or error) so far."""
    request = orchestrator_pb2.GetQueryBatchRequest(batch_id=batch_id, include_results=include_results)
    return Call("GetQueryBatch", request, _identity)
