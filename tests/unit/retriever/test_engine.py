"""The retriever engine and its config on a fake store: request checks, mode choice,
duplicate chunk ids, the schema cache, and configuration errors."""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from typing import Any

import pytest

from ragmesh.vocabulary import SearchMode
from services.common.config import ConfigError
from services.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from services.retriever.backend import ChunkRow, CollectionSpec, Hit, IndexKind, Metric, SearchQuery
from services.retriever.config import DEFAULT_URI, RetrieverConfig
from services.retriever.engine import Retriever, SearchRequest
from services.retriever.filters import Clause, FilterOp


class FakeStore:
    """Keeps specs and rows in dicts and records the searches it was asked to run."""

    array_filters = False

    def __init__(self) -> None:
        self.specs: dict[str, CollectionSpec] = {}
        self.rows: dict[str, dict[str, ChunkRow]] = {}
        self.queries: list[SearchQuery] = []
        self.deletes: list[str] = []
        self.expressions: list[str] = []
        self.describes = 0

    def create(self, spec: CollectionSpec) -> None:
        if spec.name in self.specs:
            raise AlreadyExists("exists")
        self.specs[spec.name], self.rows[spec.name] = spec, {}

    def describe(self, name: str) -> CollectionSpec:
        self.describes += 1
        if name not in self.specs:
            raise NotFound(f"collection {name!r} does not exist")
        return self.specs[name]

    def count(self, name: str, expression: str = "") -> int:
        return len(self.rows[name])

    def names(self) -> list[str]:
        return list(self.specs)

    def drop(self, name: str) -> None:
        if self.specs.pop(name, None) is None:
            raise NotFound("missing")

    def upsert(self, name: str, rows: Sequence[ChunkRow], timeout: float | None) -> int:
        self.rows[name].update({row.chunk_id: row for row in rows})
        return len(rows)

    def delete(self, name: str, expression: str, timeout: float | None) -> int:
        self.deletes.append(expression)
        return 0

    def scan(
        self, name: str, expression: str, timeout: float | None, access: bool = False
    ) -> Iterator[tuple[str, dict[str, Any], tuple[str, ...]]]:
        for row in self.rows.get(name, {}).values():
            yield row.document_id, dict(row.metadata), row.access

    def set_access(self, name: str, expression: str, access: Sequence[str], timeout: float | None) -> int:
        self.expressions.append(expression)
        return 0

    def chunks(self, name: str, expression: str, timeout: float | None) -> list[ChunkRow]:
        self.expressions.append(expression)
        return sorted(self.rows.get(name, {}).values(), key=lambda row: row.chunk_id)

    def search(self, spec: CollectionSpec, query: SearchQuery, timeout: float | None) -> list[Hit]:
        if spec.name not in self.specs:
            raise NotFound("gone")
        self.queries.append(query)
        return []

    def close(self) -> None:
        pass


@pytest.fixture
async def engine() -> AsyncIterator[tuple[Retriever, FakeStore]]:
    store = FakeStore()
    retriever = Retriever(
        store, default_index=IndexKind.HNSW, available_indexes=frozenset(IndexKind), max_upsert_chunks=100
    )
    await retriever.create_collection("docs", dimension=3, metric=Metric.COSINE, index=None, full_text=True)
    await retriever.create_collection("plain", dimension=3, metric=Metric.IP, index=None, full_text=False)
    yield retriever, store
    await retriever.close()


def _search(collection: str = "docs", **changes: Any) -> SearchRequest:
    request = SearchRequest(collection, [1.0, 0.0, 0.0], 5, [], "", SearchMode.AUTO, False)
    return replace(request, **changes)


def _chunk(chunk_id: str, text: str = "t", vector: Sequence[float] = (1.0, 0.0, 0.0)) -> ChunkRow:
    return ChunkRow(chunk_id, "doc", text, {}, vector)


@pytest.mark.parametrize(
    ("changes", "mode"),
    [
        ({}, SearchMode.DENSE),
        ({"text": "words"}, SearchMode.HYBRID),
        ({"text": "words", "vector": []}, SearchMode.SPARSE),
        ({"text": "words", "mode": SearchMode.DENSE}, SearchMode.DENSE),
        ({"text": "words", "mode": SearchMode.SPARSE}, SearchMode.SPARSE),
    ],
)
async def test_the_mode_follows_what_the_request_holds(
    engine: tuple[Retriever, FakeStore], changes: dict[str, Any], mode: SearchMode
) -> None:
    retriever, store = engine
    _, used = await retriever.search(_search(**changes))
    assert used is mode
    assert store.queries[-1].mode is mode
    assert (store.queries[-1].vector is None) == (mode is SearchMode.SPARSE)


async def test_without_full_text_an_unspecified_mode_stays_dense(engine: tuple[Retriever, FakeStore]) -> None:
    retriever, _ = engine
    _, used = await retriever.search(_search("plain", text="words"))
    assert used is SearchMode.DENSE


@pytest.mark.parametrize(
    ("collection", "changes", "message"),
    [
        ("docs", {"top_k": 0}, "top_k must be 1 to 1000"),
        ("docs", {"top_k": 1001}, "top_k must be 1 to 1000"),
        ("docs", {"vector": [1.0, 0.0]}, "dimension 2; collection 'docs' has dimension 3"),
        ("docs", {"vector": [1.0, math.nan, 0.0]}, "NaN"),
        ("docs", {"vector": [], "mode": SearchMode.DENSE}, "DENSE search needs a query vector"),
        ("docs", {"mode": SearchMode.SPARSE}, "SPARSE search needs query_text"),
        ("docs", {"mode": SearchMode.HYBRID, "text": "   "}, "HYBRID search needs query_text"),
        ("plain", {"mode": SearchMode.HYBRID, "text": "x"}, "no full-text index"),
        ("plain", {"mode": SearchMode.SPARSE, "text": "x"}, "use SEARCH_MODE_DENSE"),
        ("docs", {"clauses": [Clause("a b", FilterOp.EQ, 1)]}, "field 'a b' is not allowed"),
        ("bad-name", {}, "collection name 'bad-name' is invalid"),
    ],
)
async def test_bad_searches_are_invalid_arguments(
    engine: tuple[Retriever, FakeStore], collection: str, changes: dict[str, Any], message: str
) -> None:
    retriever, store = engine
    with pytest.raises(InvalidArgument, match=message):
        await retriever.search(_search(collection, **changes))
    assert store.queries == []


async def test_unknown_collections_are_not_found(engine: tuple[Retriever, FakeStore]) -> None:
    retriever, _ = engine
    with pytest.raises(NotFound):
        await retriever.search(_search("missing"))
    with pytest.raises(NotFound):
        await retriever.upsert("missing", [_chunk("a")])
    with pytest.raises(NotFound):
        await retriever.drop("missing")


async def test_filters_reach_the_store_as_one_expression(engine: tuple[Retriever, FakeStore]) -> None:
    retriever, store = engine
    clauses = [Clause("lang", FilterOp.EQ, "en"), Clause("year", FilterOp.GT, 2000)]
    await retriever.search(_search(clauses=clauses))
    assert store.queries[-1].expression == '(metadata["lang"] == "en") and (metadata["year"] > 2000)'


async def test_upsert_keeps_the_last_of_duplicate_chunk_ids(engine: tuple[Retriever, FakeStore]) -> None:
    retriever, store = engine
    assert await retriever.upsert("docs", [_chunk("a", "first"), _chunk("b"), _chunk("a", "second")]) == 2
    assert store.rows["docs"]["a"].text == "second"


@pytest.mark.parametrize(
    ("chunks", "message"),
    [
        ([], "chunks is empty"),
        ([_chunk("a")] * 101, "limit is 100"),
        ([_chunk("")], r"chunks\[0\].chunk_id is empty"),
        ([_chunk("a"), _chunk("b", vector=(1.0, 2.0))], r"chunks\[1\].vector has dimension 2"),
        ([_chunk("a", vector=(1.0, math.inf, 0.0))], "NaN or infinite"),
        ([_chunk("a", text="x" * 70_000)], "longer than 65535 bytes"),
        ([ChunkRow("a", "d", "t", {"big": "x" * 70_000}, (1.0, 0.0, 0.0))], "metadata is larger"),
    ],
)
async def test_bad_upserts_are_invalid_arguments(
    engine: tuple[Retriever, FakeStore], chunks: list[ChunkRow], message: str
) -> None:
    retriever, store = engine
    with pytest.raises(InvalidArgument, match=message):
        await retriever.upsert("docs", chunks)
    assert store.rows["docs"] == {}


async def test_delete_needs_a_target_and_ands_ids_with_filters(engine: tuple[Retriever, FakeStore]) -> None:
    retriever, store = engine
    with pytest.raises(InvalidArgument, match="give document_ids and/or filters"):
        await retriever.delete("docs", [], [])
    await retriever.delete("docs", ["d1"], [Clause("lang", FilterOp.EQ, "en")])
    assert store.deletes == ['(document_id in ["d1"]) and ((metadata["lang"] == "en"))']


async def test_create_validates_and_reports_existing_collections(engine: tuple[Retriever, FakeStore]) -> None:
    retriever, _ = engine
    with pytest.raises(InvalidArgument, match="dimension must be 1 to 32768"):
        await retriever.create_collection("x", dimension=0, metric=Metric.COSINE, index=None, full_text=True)
    with pytest.raises(AlreadyExists):
        await retriever.create_collection("docs", dimension=3, metric=Metric.COSINE, index=None, full_text=True)
    info, created = await retriever.create_collection(
        "docs", dimension=3, metric=Metric.COSINE, index=None, full_text=True, if_not_exists=True
    )
    assert (created, info.spec.index) == (False, IndexKind.HNSW)
    with pytest.raises(AlreadyExists, match=r"dimension 3 \(asked 4\)"):
        await retriever.create_collection(
            "docs", dimension=4, metric=Metric.COSINE, index=None, full_text=True, if_not_exists=True
        )


async def test_unavailable_indexes_fall_back_or_are_refused() -> None:
    retriever = Retriever(
        FakeStore(), default_index=IndexKind.HNSW, available_indexes=frozenset({IndexKind.FLAT}), max_upsert_chunks=1
    )
    info, _ = await retriever.create_collection("a", dimension=2, metric=Metric.L2, index=None, full_text=False)
    assert info.spec.index is IndexKind.FLAT
    with pytest.raises(FailedPrecondition, match="HNSW is not available"):
        await retriever.create_collection("b", dimension=2, metric=Metric.L2, index=IndexKind.HNSW, full_text=False)
    await retriever.close()


async def test_the_schema_cache_saves_describes_and_forgets_dropped_collections(
    engine: tuple[Retriever, FakeStore],
) -> None:
    retriever, store = engine
    await retriever.search(_search())
    before = store.describes
    for _ in range(3):
        await retriever.search(_search())
    assert store.describes == before
    store.specs.pop("docs")  # dropped behind the cache's back (another replica)
    with pytest.raises(NotFound):
        await retriever.search(_search())
    with pytest.raises(NotFound):
        await retriever.search(_search())
    assert store.describes == before + 1


def test_config_defaults_to_a_local_milvus_lite_path() -> None:
    config = RetrieverConfig.from_env({})
    assert config.uri == DEFAULT_URI
    assert config.local
    assert config.server.address == "127.0.0.1:50053"
    assert config.server.metrics_port == 9103
    assert config.default_index is IndexKind.HNSW
    assert config.flush_writes
    remote = RetrieverConfig.from_env({"RAGMESH_RETRIEVER_URI": "http://milvus:19530", "RAGMESH_RETRIEVER_TOKEN": "t"})
    assert (remote.local, remote.token, remote.flush_writes) == (False, "t", False)
    forced = RetrieverConfig.from_env(
        {"RAGMESH_RETRIEVER_URI": "http://milvus:19530", "RAGMESH_RETRIEVER_FLUSH": "always"}
    )
    assert forced.flush_writes
    assert not RetrieverConfig.from_env({"RAGMESH_RETRIEVER_FLUSH": "never"}).flush_writes


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("RAGMESH_RETRIEVER_URI", "./data/store", "must end in .db"),
        ("RAGMESH_RETRIEVER_URI", "http://:19530", "host:port"),
        ("RAGMESH_RETRIEVER_DEFAULT_INDEX", "annoy", "one of"),
        ("RAGMESH_RETRIEVER_HNSW_EF", "0", "at least"),
        ("RAGMESH_RETRIEVER_WORKERS", "many", "integer"),
    ],
)
def test_bad_retriever_settings_name_the_variable(variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        RetrieverConfig.from_env({variable: value})
    assert caught.value.variable == variable
    assert expected in str(caught.value)


async def test_listing_skips_collections_the_retriever_cannot_describe(engine: tuple[Retriever, FakeStore]) -> None:
    retriever, store = engine
    store.specs["_made_elsewhere"] = CollectionSpec("_made_elsewhere", 3, Metric.L2, IndexKind.FLAT, False)
    infos = await retriever.list_collections()
    assert [info.spec.name for info in infos] == ["docs", "plain"]
