"""The retriever's domain logic: request checks, search modes, the schema cache, metrics.

The servicer turns protobuf into calls on :class:`Retriever`; the store sits behind
:class:`~services.retriever.backend.VectorStore`. pymilvus is synchronous, so every store
call runs in a small thread pool and the gRPC event loop keeps serving meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from prometheus_client import Counter, Gauge, Histogram

from ragmesh.vocabulary import SearchMode
from services.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.common.metrics import LATENCY_BUCKETS
from services.retriever.backend import (
    ChunkRow,
    CollectionInfo,
    CollectionSpec,
    Hit,
    IndexKind,
    Metric,
    SearchQuery,
    VectorStore,
)
from services.retriever.documents import DocumentReads, where
from services.retriever.filters import Clause, build_expression, document_ids_expression
from services.retriever.validation import (
    check_chunks,
    check_name,
    check_query_text,
    check_top_k,
    check_vector,
    unique_by_chunk_id,
    with_access,
)

SEARCH_LATENCY = Histogram(
    "ragmesh_retriever_search_seconds", "Search time in the store, by mode", ["mode"], buckets=LATENCY_BUCKETS
)
ROWS_UPSERTED = Counter("ragmesh_retriever_rows_upserted_total", "Chunks written by Upsert", ["collection"])
ROWS_DELETED = Counter("ragmesh_retriever_rows_deleted_total", "Chunks removed by Delete", ["collection"])
COLLECTION_ROWS = Gauge(
    "ragmesh_retriever_collection_rows", "Chunks in each collection, as of the last write or listing", ["collection"]
)
MAX_DIMENSION = 32_768
log = logging.getLogger(__name__)
_T = TypeVar("_T")


@dataclass(frozen=True)
class SearchRequest:
    """A search as the client asked for it (not yet checked)."""

    collection: str
    vector: Sequence[float]
    top_k: int
    clauses: Sequence[Clause]
    text: str
    #: AUTO lets the retriever choose (see :meth:`Retriever.choose_mode`).
    mode: SearchMode
    return_vectors: bool


class Retriever(DocumentReads):
    """Validates requests and runs them on a store in worker threads (listings, chunk reads
    and access lists in :class:`DocumentReads`)."""

    def __init__(
        self,
        store: VectorStore,
        *,
        default_index: IndexKind,
        available_indexes: frozenset[IndexKind],
        max_upsert_chunks: int,
        workers: int = 4,
        schema_cache_seconds: float = 10.0,
    ) -> None:
        self.store = store
        self.default_index = default_index if default_index in available_indexes else IndexKind.FLAT
        self.available_indexes = available_indexes
        self.max_upsert_chunks = max_upsert_chunks
        self.schema_cache_seconds = schema_cache_seconds
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="retriever-store")
        self._specs: dict[str, tuple[CollectionSpec, float]] = {}

    async def close(self) -> None:
        """Wait for running store calls, then release the store."""
        await asyncio.get_running_loop().run_in_executor(None, self._executor.shutdown)
        await asyncio.to_thread(self.store.close)

    async def create_collection(
        self,
        name: str,
        *,
        dimension: int,
        metric: Metric,
        index: IndexKind | None,
        full_text: bool,
        if_not_exists: bool = False,
    ) -> tuple[CollectionInfo, bool]:
        """Create a collection; with ``if_not_exists`` an identical existing one is returned."""
        check_name(name)
        if not 1 <= dimension <= MAX_DIMENSION:
            raise InvalidArgument(f"dimension must be 1 to {MAX_DIMENSION}, got {dimension}")
        if index is not None and index not in self.available_indexes:
            raise FailedPrecondition(f"index {index.name} is not available in this store (faiss-cpu missing?)")
        spec = CollectionSpec(name, dimension, metric, index or self.default_index, full_text)
        self._specs.pop(name, None)
        try:
            await self._run(self.store.create, spec)
        except AlreadyExists:
            if not if_not_exists:
                raise
            existing = await self._spec(name)
            _check_same(existing, spec, index is not None)
            return await self.describe(name), False
        COLLECTION_ROWS.labels(name).set(0)
        return CollectionInfo(spec, 0), True

    async def list_collections(self, clauses: Sequence[Clause] = ()) -> list[CollectionInfo]:
        """Every collection made by the retriever, sorted by name, counting the chunks that
        match ``clauses``."""
        build_expression(clauses)
        infos = []
        for name in sorted(await self._run(self.store.names)):
            try:
                infos.append(await self.describe(name, clauses))
            except (FailedPrecondition, InvalidArgument, NotFound) as error:  # foreign, or dropped meanwhile
                log.debug("listing skips %s: %s", name, error)
        return infos

    async def describe(self, name: str, clauses: Sequence[Clause] = ()) -> CollectionInfo:
        """A collection's spec and current count (of the chunks matching ``clauses``)."""
        spec = await self._spec(name)
        expression = build_expression(clauses, self._access_mode(spec))
        count = await self._run(self.store.count, name, expression)
        if not clauses:
            COLLECTION_ROWS.labels(name).set(count)
        return CollectionInfo(spec, count)

    async def drop(self, name: str) -> None:
        """Drop a collection and all its chunks."""
        check_name(name)
        self._specs.pop(name, None)
        await self._run(self.store.drop, name)
        self._specs.pop(name, None)
        with contextlib.suppress(KeyError):  # never set when no write or listing saw it
            COLLECTION_ROWS.remove(name)

    async def upsert(self, name: str, chunks: Sequence[ChunkRow], timeout: float | None = None) -> int:
        """Write chunks (replacing any with the same chunk id); returns how many were written."""
        if not chunks:
            raise InvalidArgument("chunks is empty; send at least one chunk")
        if len(chunks) > self.max_upsert_chunks:
            raise InvalidArgument(
                f"{len(chunks)} chunks in one call; the limit is {self.max_upsert_chunks}, split the upsert"
            )
        spec = await self._spec(name)
        written = await self._run(self._write, spec, chunks, timeout)
        ROWS_UPSERTED.labels(name).inc(written)
        await self._refresh_count(name)
        return written

    def _write(self, spec: CollectionSpec, chunks: Sequence[ChunkRow], timeout: float | None) -> int:
        # Checked in the worker thread: thousands of chunks would stall the event loop.
        check_chunks(spec, chunks)
        return self.store.upsert(spec.name, with_access(spec, unique_by_chunk_id(chunks)), timeout)

    async def delete(
        self, name: str, document_ids: Sequence[str], clauses: Sequence[Clause], timeout: float | None = None
    ) -> int:
        """Delete chunks of ``document_ids`` that also match every clause; returns how many."""
        if not document_ids and not clauses:
            raise InvalidArgument("give document_ids and/or filters; deleting everything is DropCollection")
        parts = [document_ids_expression(document_ids)] if document_ids else []
        build_expression(clauses)
        spec = await self._spec(name)
        if clauses:
            parts.append(build_expression(clauses, self._access_mode(spec)))
        deleted = await self._run(self.store.delete, name, where(parts), timeout)
        ROWS_DELETED.labels(name).inc(deleted)
        await self._refresh_count(name)
        return deleted

    async def search(self, request: SearchRequest, timeout: float | None = None) -> tuple[list[Hit], SearchMode]:
        """Nearest chunks, best first, and the mode used."""
        check_top_k(request.top_k)
        build_expression(request.clauses)  # a bad clause is the caller's error, before any store call
        spec = await self._spec(request.collection)
        expression = build_expression(request.clauses, self._access_mode(spec))
        mode = self.choose_mode(spec, request)
        if mode is not SearchMode.SPARSE:
            check_vector(spec, request.vector, mode)
        if mode is not SearchMode.DENSE:
            check_query_text(spec, request.text, mode)
        query = SearchQuery(
            mode=mode,
            top_k=request.top_k,
            vector=request.vector if mode is not SearchMode.SPARSE else None,
            text=request.text,
            expression=expression,
            return_vectors=request.return_vectors,
        )
        started = time.perf_counter()
        hits = await self._run(self.store.search, spec, query, timeout)
        SEARCH_LATENCY.labels(mode.value).observe(time.perf_counter() - started)
        return hits, mode

    @staticmethod
    def choose_mode(spec: CollectionSpec, request: SearchRequest) -> SearchMode:
        """The requested mode, or: HYBRID with a vector and text on a full-text collection,
        DENSE with a vector, SPARSE with text only (full text needed)."""
        if request.mode is not SearchMode.AUTO:
            return request.mode
        has_text = bool(request.text.strip())
        if request.vector:
            return SearchMode.HYBRID if has_text and spec.full_text else SearchMode.DENSE
        return SearchMode.SPARSE if has_text else SearchMode.DENSE

    async def _spec(self, name: str) -> CollectionSpec:
        check_name(name)
        cached = self._specs.get(name)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        spec = await self._run(self.store.describe, name)
        self._specs[name] = (spec, time.monotonic() + self.schema_cache_seconds)
        return spec

    async def _refresh_count(self, name: str) -> None:
        COLLECTION_ROWS.labels(name).set(await self._run(self.store.count, name))

    async def _run(self, function: Callable[..., _T], *args: object) -> _T:
        """Run a store call in the pool, keeping the caller's context (trace) and forgetting a
        cached schema when the store says the collection is gone."""
        call = functools.partial(contextvars.copy_context().run, function, *args)
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, call)
        except NotFound:
            target = args[0] if args else None
            name = target.name if isinstance(target, CollectionSpec) else target
            if isinstance(name, str):
                self._specs.pop(name, None)
            raise


def _check_same(existing: CollectionSpec, wanted: CollectionSpec, index_given: bool) -> None:
    """An existing collection may stand in for a new one only if it is the same."""
    differences = [
        f"{label} {mine} (asked {theirs})"
        for label, mine, theirs, compare in (
            ("dimension", existing.dimension, wanted.dimension, True),
            ("metric", existing.metric.name, wanted.metric.name, True),
            ("full_text", existing.full_text, wanted.full_text, True),
            ("index", existing.index.name, wanted.index.name, index_given),
        )
        if compare and mine != theirs
    ]
    if differences:
        raise AlreadyExists(f"collection {existing.name!r} exists with {', '.join(differences)}")
