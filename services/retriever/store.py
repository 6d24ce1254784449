"""The vector store on ``pymilvus.MilvusClient``: milvus-lite on a local path, or a Milvus server.

One code path serves both: pymilvus turns a ``.db`` path into an embedded milvus-lite
server in this process, and an ``http://host:19530`` URI into a connection to Milvus
standalone or a cluster. All calls here are synchronous; the engine runs them in worker
threads so the gRPC event loop stays responsive.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import grpc
from pymilvus import AnnSearchRequest, MilvusClient, MilvusException, RRFRanker
from pymilvus.client.types import LoadState
from pymilvus.exceptions import ErrorCode, MilvusUnavailableException

from ragmesh.vocabulary import SearchMode
from ragmesh.vocabulary.access import ACCESS_FIELD
from services.common.errors import AlreadyExists, DeadlineExceeded, NotFound, Overloaded, Unavailable
from services.common.server import StartupError
from services.retriever.backend import ChunkRow, CollectionSpec, Hit, IndexKind, SearchQuery
from services.retriever.config import IndexTuning, RetrieverConfig
from services.retriever.filters import ACCESS_TERMS, access_terms
from services.retriever.local_path import claim_local_path, locked_message, path_is_locked
from services.retriever.schema import (
    OUTPUT_FIELDS,
    SPARSE,
    VECTOR,
    bm25_score,
    collection_schema,
    dense_score,
    dense_search_params,
    hit_of,
    index_params,
    row_fields,
    spec_from_description,
)

log = logging.getLogger(__name__)
_BM25_PARAMS: dict[str, Any] = {"metric_type": "BM25", "params": {}}


class MilvusStore:
    """A :class:`~services.retriever.backend.VectorStore` on one MilvusClient."""

    def __init__(
        self, client: MilvusClient, config: RetrieverConfig, local_path: Path | None, indexes: frozenset[IndexKind]
    ) -> None:
        self.client = client
        self.tuning: IndexTuning = config.tuning
        self.rrf_k = config.rrf_k
        self.hybrid_candidates = config.hybrid_candidates
        self.write_batch = config.write_batch
        self.flush_writes = config.flush_writes
        self.local_path = local_path
        #: Index types this store can build (milvus-lite needs faiss for HNSW and IVF).
        self.indexes = indexes
        #: milvus-lite indexes no ARRAY field: it filters access lists on their terms column.
        self.array_filters = local_path is None

    @classmethod
    def open(cls, config: RetrieverConfig) -> MilvusStore:
        """Connect (or open the milvus-lite path) and load every collection for search."""
        # pymilvus logs each failed call with a traceback at ERROR; the service maps those
        # failures to statuses itself and logs the unexpected ones once, with the trace id.
        logging.getLogger("pymilvus.decorators").setLevel(logging.CRITICAL)
        local_path = claim_local_path(config.uri) if config.local else None
        uri = str(local_path) if local_path else config.uri
        try:
            client = MilvusClient(uri=uri, token=config.token)
        except MilvusException as error:
            if local_path is not None and path_is_locked(local_path):
                raise StartupError(locked_message(local_path)) from None
            raise StartupError(f"cannot open the Milvus store at {uri}: {error.message}") from None
        all_indexes = frozenset(IndexKind)
        faiss = local_path is None or importlib.util.find_spec("faiss") is not None
        store = cls(client, config, local_path, all_indexes if faiss else frozenset({IndexKind.FLAT}))
        names = client.list_collections()
        for name in names:
            store.ensure_loaded(name)
        log.info("store open at %s with %d collection(s)", uri, len(names))
        return store

    def close(self) -> None:
        """Close the client and, for milvus-lite, stop its server and release the path's lock."""
        self.client.close()
        if self.local_path is not None:
            from milvus_lite.server_manager import server_manager_instance

            server_manager_instance.release_server(str(self.local_path))

    def create(self, spec: CollectionSpec) -> None:
        """Create a collection with its indexes (loaded, ready to search)."""
        with _translate(spec.name):
            if self.client.has_collection(spec.name):
                raise AlreadyExists(f"collection {spec.name!r} exists already")
            try:
                self.client.create_collection(spec.name, schema=collection_schema(spec), consistency_level="Strong")
            except MilvusException as error:
                if "exist" in error.message:  # lost a race with another creator
                    raise AlreadyExists(f"collection {spec.name!r} exists already") from None
                raise
            # Not index_params= above: pymilvus would then wait on index state with a call
            # milvus-lite lacks (AllocTimestamp), logging an error and sleeping 0.5 s.
            params = index_params(self.client, spec, self.tuning, self.array_filters)
            self.client.create_index(spec.name, params, sync=False)
            self.client.load_collection(spec.name)

    def describe(self, name: str) -> CollectionSpec:
        """The spec of ``name``, loading the collection for search when it is not loaded."""
        with _translate(name):
            description = self.client.describe_collection(name)
            index = self.client.describe_index(name, VECTOR)
            self.ensure_loaded(name)
        return spec_from_description(name, description, index)

    def ensure_loaded(self, name: str) -> None:
        """Load a collection (milvus-lite starts with every collection released)."""
        state = self.client.get_load_state(name).get("state")
        if state != LoadState.Loaded:
            self.client.load_collection(name)

    def count(self, name: str, expression: str = "") -> int:
        """Exact number of chunks matching ``expression`` (``count(*)`` sees deletes at once;
        collection stats may not)."""
        with _translate(name):
            rows = self.client.query(name, filter=expression, output_fields=["count(*)"])
        return int(rows[0]["count(*)"]) if rows else 0

    def names(self) -> list[str]:
        """All collection names."""
        with _translate(""):
            return list(self.client.list_collections())

    def drop(self, name: str) -> None:
        """Drop a collection; NotFound when it does not exist."""
        with _translate(name):
            if not self.client.has_collection(name):
                raise NotFound(f"collection {name!r} does not exist")
            self.client.drop_collection(name)

    def upsert(self, name: str, rows: Sequence[ChunkRow], timeout: float | None) -> int:
        """Write ``rows`` in batches, then flush once so that searches use indexed segments."""
        remaining = _budget(timeout)
        with _translate(name):
            for start in range(0, len(rows), self.write_batch):
                batch = [row_fields(row) for row in rows[start : start + self.write_batch]]
                self.client.upsert(name, batch, timeout=remaining())
            if self.flush_writes:
                self.client.flush(name, timeout=remaining())
        return len(rows)

    def delete(self, name: str, expression: str, timeout: float | None) -> int:
        """Delete the chunks matching ``expression``, then flush; returns how many went."""
        remaining = _budget(timeout)
        with _translate(name):
            result = self.client.delete(name, filter=expression, timeout=remaining())
            if self.flush_writes:
                self.client.flush(name, timeout=remaining())
        # milvus-lite returns the deleted primary keys, a Milvus server a count.
        if isinstance(result, list):
            return len(result)
        return int(result.get("delete_count", 0))

    def scan(
        self, name: str, expression: str, timeout: float | None, access: bool = False
    ) -> Iterator[tuple[str, dict[str, Any], tuple[str, ...]]]:
        """(document id, metadata, access list) of every chunk matching ``expression`` ("" for
        all), in batches of ``write_batch`` rows (an iterator: no offset limit)."""
        fields = ["document_id", "metadata", *([ACCESS_FIELD] if access else [])]
        with _translate(name):
            rows = self.client.query_iterator(
                name, batch_size=self.write_batch, filter=expression, output_fields=fields, timeout=timeout
            )
            try:
                while batch := rows.next():
                    for row in batch:
                        yield str(row["document_id"]), row.get("metadata") or {}, tuple(row.get(ACCESS_FIELD) or ())
            finally:
                rows.close()

    def set_access(self, name: str, expression: str, access: Sequence[str], timeout: float | None) -> int:
        """Partial upserts of the access column of the matching chunks, then one flush."""
        remaining = _budget(timeout)
        with _translate(name):
            rows = self.client.query(name, filter=expression, output_fields=["chunk_id"], timeout=remaining())
            ids = [str(row["chunk_id"]) for row in rows]
            for start in range(0, len(ids), self.write_batch):
                part = ids[start : start + self.write_batch]
                batch = [{"chunk_id": i, ACCESS_FIELD: list(access), ACCESS_TERMS: access_terms(access)} for i in part]
                self.client.upsert(name, batch, timeout=remaining(), partial_update=True)
            if ids and self.flush_writes:
                self.client.flush(name, timeout=remaining())
        return len(ids)

    def chunks(self, name: str, expression: str, timeout: float | None) -> list[ChunkRow]:
        """Every chunk matching ``expression`` (no vectors), ordered by chunk id."""
        with _translate(name):
            rows = self.client.query(
                name, filter=expression, output_fields=["chunk_id", *OUTPUT_FIELDS], timeout=timeout
            )
        found = [
            ChunkRow(str(r["chunk_id"]), str(r["document_id"]), str(r["text"]), r.get("metadata") or {}, [])
            for r in rows
        ]
        return sorted(found, key=lambda row: row.chunk_id)

    def search(self, spec: CollectionSpec, query: SearchQuery, timeout: float | None) -> list[Hit]:
        """Run ``query`` in its mode; hits best first with higher-is-better scores."""
        fields = [*OUTPUT_FIELDS, VECTOR] if query.return_vectors else OUTPUT_FIELDS
        with _translate(spec.name):
            if query.mode is SearchMode.HYBRID:
                return self._hybrid(spec, query, fields, timeout)
            if query.mode is SearchMode.DENSE:
                data: list[Any] = [list(query.vector or ())]
                field, params = VECTOR, dense_search_params(spec, self.tuning, query.top_k)
                score: Callable[[float], float] = functools.partial(dense_score, spec.metric)
            else:
                data, field, params, score = [query.text], SPARSE, _BM25_PARAMS, bm25_score
            results = self.client.search(
                spec.name,
                data,
                limit=query.top_k,
                filter=query.expression,
                output_fields=fields,
                search_params=params,
                anns_field=field,
                timeout=timeout,
            )
        return [hit_of(hit, score) for hit in results[0]]

    def _hybrid(self, spec: CollectionSpec, query: SearchQuery, fields: list[str], timeout: float | None) -> list[Hit]:
        # Each leg fetches more candidates than asked so that fusion has something to fuse.
        leg = min(1000, max(query.top_k, self.hybrid_candidates))
        expression = query.expression or None
        legs = [
            AnnSearchRequest(
                [list(query.vector or ())], VECTOR, dense_search_params(spec, self.tuning, leg), leg, expression
            ),
            AnnSearchRequest([query.text], SPARSE, _BM25_PARAMS, leg, expression),
        ]
        results = self.client.hybrid_search(
            spec.name, legs, RRFRanker(self.rrf_k), limit=query.top_k, output_fields=fields, timeout=timeout
        )
        return [hit_of(hit, float) for hit in results[0]]


@contextlib.contextmanager
def _translate(name: str) -> Iterator[None]:
    """Turn Milvus errors a caller can act on into domain errors (the rest stay INTERNAL)."""
    try:
        yield
    except MilvusException as error:
        # pymilvus puts a gRPC status in ``code`` when the connection itself failed.
        if error.code == ErrorCode.COLLECTION_NOT_FOUND:
            raise NotFound(f"collection {name!r} does not exist") from None
        if error.code == grpc.StatusCode.UNAVAILABLE or isinstance(error, MilvusUnavailableException):
            raise Unavailable(f"the Milvus store is unreachable: {error.message}") from None
        if error.code == grpc.StatusCode.DEADLINE_EXCEEDED:
            raise DeadlineExceeded("the Milvus store did not answer in time") from None
        if error.code == ErrorCode.RATE_LIMIT:
            raise Overloaded(f"the Milvus store is rate limiting: {error.message}") from None
        raise


def _budget(timeout: float | None) -> Callable[[], float | None]:
    """Time left of ``timeout`` for each of several calls (None: no deadline)."""
    deadline = None if timeout is None else time.monotonic() + timeout

    def remaining() -> float | None:
        return None if deadline is None else max(0.001, deadline - time.monotonic())

    return remaining
