"""The blocking client of the orchestrator (through Envoy or directly): a thin face over
the calls built in :mod:`ragmesh.client.base`."""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import Any, TypeVar

import grpc

from ragmesh.client import access_calls, base, types
from ragmesh.client.base import Call, ClientSettings, IngestTally, errors_as_ragmesh, ingest_requests
from ragmesh.v1 import orchestrator_pb2, orchestrator_pb2_grpc

R = TypeVar("R")


class RagmeshClient:
    """Ask, stream, ingest and inspect over one channel. Use as a context manager."""

    def __init__(self, address: str = "127.0.0.1:8080", **settings: Any) -> None:
        self.settings = ClientSettings(address=address, **settings)
        credentials, options = self.settings.credentials(), self.settings.channel_options()
        self.channel = (
            grpc.secure_channel(address, credentials, options=options)
            if credentials
            else grpc.insecure_channel(address, options=options)
        )
        self.stub = orchestrator_pb2_grpc.OrchestratorServiceStub(self.channel)

    def __enter__(self) -> RagmeshClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel."""
        self.channel.close()

    def _run(self, call: Call[R]) -> R:
        with errors_as_ragmesh():
            return call.parse(getattr(self.stub, call.method)(call.request, **self.settings.call_options()))

    def query(self, query: str, collection: str = "", top_k: int = 0, **options: Any) -> types.Answer:
        """The whole answer with its sources."""
        return self._run(base.query_call(self.settings, query, collection, top_k, **options))

    def query_stream(
        self, query: str, collection: str = "", top_k: int = 0, **options: Any
    ) -> Generator[types.StreamEvent, None, None]:
        """Sources, then the answer's text as it is generated, then a DoneEvent."""
        request = self.settings.query_request(query, collection, top_k, **options)
        call = self.stub.QueryStream(request, **self.settings.call_options())
        try:
            with errors_as_ragmesh():
                for message in call:
                    yield types.stream_event(message)
        finally:
            call.cancel()  # leaving the loop early stops the generation

    def ingest(
        self,
        documents: Iterable[types.Document | dict[str, Any]],
        collection: str = "",
        on_progress: Callable[[types.IngestProgress], None] | None = None,
        *,
        batch_size: int = 64,
        chunk_tokens: int = 0,
        overlap_tokens: int = 0,
        sync_prefix: str = "",
    ) -> types.IngestProgress:
        """Index documents (streamed in batches); returns the final progress, with every error.
        With ``sync_prefix``, documents whose ``source`` starts with it and that this call
        did not send are deleted (a folder mirrored)."""
        requests = ingest_requests(
            documents,
            collection or "default",
            batch_size=batch_size,
            chunk_tokens=chunk_tokens,
            overlap_tokens=overlap_tokens,
            sync_prefix=sync_prefix,
        )
        tally = IngestTally(on_progress)
        with errors_as_ragmesh():
            for message in self.stub.Ingest(requests, **self.settings.call_options()):
                tally.add(message)
        return tally.result()

    def delete_documents(self, document_ids: Sequence[str], collection: str = "") -> int:
        """Delete documents; returns the number of chunks removed."""
        return self._run(base.delete_call(document_ids, collection))

    def collections(self) -> list[orchestrator_pb2.CollectionSummary]:
        """Collections with their sizes and versions."""
        return self._run(base.collections_call())

    def documents(
        self, collection: str = "", *, page_size: int = 0, page_token: str = "", name_contains: str = ""
    ) -> orchestrator_pb2.OrchestratorServiceListDocumentsResponse:
        """One page of a collection's documents (sorted by id; ``next_page_token`` continues)."""
        return self._run(base.documents_call(collection, page_size, page_token, name_contains))

    def document(self, document_id: str, collection: str = "") -> orchestrator_pb2.GetDocumentResponse:
        """A document's chunks in order."""
        return self._run(base.document_call(document_id, collection))

    def set_document_access(self, document_ids: Sequence[str], access: Sequence[str], collection: str = "") -> int:
        """Give documents a new access list (``user:NAME``, ``group:NAME``; empty: the whole
        tenant) without re-embedding them; returns the chunks updated."""
        return self._run(access_calls.access_call(document_ids, access, collection))

    def sources(self) -> list[orchestrator_pb2.SourceInfo]:
        """The sources whose collection this key may read."""
        return self._run(access_calls.sources_call())

    def source_status(self, name: str) -> orchestrator_pb2.SourceStatus:
        """A source and its last sync."""
        return self._run(access_calls.source_status_call(name))

    def sync_source(self, name: str) -> str:
        """Start a sync of a source now; returns its job id (see :meth:`watch_job`)."""
        return self._run(access_calls.sync_source_call(name))

    def health(self) -> orchestrator_pb2.CheckHealthResponse:
        """Every component's health as the orchestrator sees it."""
        return self._run(base.health_call())

    def stats(self) -> orchestrator_pb2.GetStatsResponse:
        """Cache hit rates and per-component call counts of the replica that answers."""
        return self._run(base.stats_call())

    def submit_job(self, documents: Iterable[types.Document | dict[str, Any]], collection: str = "") -> str:
        """Start a background ingestion job; returns its id."""
        return self._run(base.submit_job_call(documents, collection))

    def job(self, job_id: str) -> orchestrator_pb2.IngestJob:
        """An ingestion job's state and progress."""
        return self._run(base.job_call(job_id))

    def watch_job(self, job_id: str) -> Iterator[orchestrator_pb2.IngestJob]:
        """The job's state on every change until it finishes."""
        with errors_as_ragmesh():
            yield from self.stub.WatchIngestJob(
                orchestrator_pb2.GetIngestJobRequest(job_id=job_id), metadata=self.settings.metadata()
            )

    def feedback(self, trace_id: str, rating: float, relevance: dict[str, int] | None = None) -> tuple[str, str]:
        """Rate an answer by its trace id (1 to 5, optional relevance grades per document);
        returns the (experiment, variant) it ran under."""
        return self._run(base.feedback_call(trace_id, rating, relevance))

    def experiment_report(
        self, experiment: str, metric: str = "latency_ms", *, chart: bool = False, **options: bool
    ) -> orchestrator_pb2.ExperimentReport:
        """Per-variant statistics of an experiment and the significance of their differences."""
        return self._run(base.experiment_report_call(experiment, metric, chart=chart, **options))

    def submit_batch(self, queries: Iterable[orchestrator_pb2.QueryRequest | dict[str, Any]]) -> str:
        """Queue a batch of queries (1 to 10,000) for the workers; returns its id."""
        return self._run(base.submit_batch_call(self.settings, queries))

    def batch(self, batch_id: str, include_results: bool = False) -> orchestrator_pb2.QueryBatch:
        """A batch's progress and, with ``include_results``, every answer (or error) so far."""
        return self._run(base.batch_call(batch_id, include_results))
