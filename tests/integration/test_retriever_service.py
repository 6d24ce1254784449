"""The retriever as a real process on real milvus-lite: collections, upsert, delete, search
order and scores, errors, persistence across restarts, the path lock, metrics."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import grpc
import numpy as np
import pytest

from ragmesh.mesh.processes import ServiceProcess, health_status
from ragmesh.v1 import common_pb2, retriever_pb2
from services.retriever.schema import TEXT_BYTES
from tests.support.metrics import scrape, value
from tests.support.retriever import Stub, angle, chunk, create, hit_ids, retriever_stub, search, unique_name

pytestmark = pytest.mark.integration


def _axis(i: int, dimension: int = 8) -> list[float]:
    """Unit vector along axis i, tilted a little towards axis 0 so that ranks differ."""
    vector = [0.0] * dimension
    vector[i] = 1.0
    vector[0] += 0.1 * i
    return vector


def _code(call: Callable[[], object]) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    return caught.value.code()


def test_upsert_then_search_returns_nearest_chunks_in_order(stub: Stub) -> None:
    name = unique_name("order")
    create(stub, name, 8)
    chunks = [chunk(f"c{i}", f"doc{i % 3}", f"text {i}", angle(i), position=i, lang="en") for i in range(8)]
    assert stub.Upsert(retriever_pb2.UpsertRequest(collection=name, chunks=chunks)).upserted == 8
    response = search(stub, name, angle(3.3), top_k=3, mode=common_pb2.SEARCH_MODE_DENSE)
    assert hit_ids(response) == ["c3", "c4", "c2"]
    scores = [hit.score for hit in response.hits]
    assert scores == sorted(scores, reverse=True)
    best = response.hits[0]
    assert (best.document_id, best.text) == ("doc0", "text 3")
    assert dict(best.metadata) == {"position": 3, "lang": "en"}
    assert list(best.vector) == []
    assert response.mode == common_pb2.SEARCH_MODE_DENSE


def test_stored_vectors_come_back_when_asked(stub: Stub) -> None:
    name = unique_name("vectors")
    create(stub, name, 8)
    stub.Upsert(retriever_pb2.UpsertRequest(collection=name, chunks=[chunk("a", "d", "t", _axis(2))]))
    response = search(stub, name, _axis(2), top_k=1, return_vectors=True)
    assert list(response.hits[0].vector) == pytest.approx(_axis(2))


@pytest.mark.parametrize(
    ("metric", "best_score"),
    [(retriever_pb2.METRIC_COSINE, 1.0), (retriever_pb2.METRIC_IP, 1.0), (retriever_pb2.METRIC_L2, 0.0)],
)
def test_scores_are_higher_is_better_for_every_metric(stub: Stub, metric: int, best_score: float) -> None:
    name = unique_name("metric")
    create(stub, name, 3, metric=metric, index_type=retriever_pb2.INDEX_TYPE_FLAT)
    vectors = {"near": [1.0, 0.0, 0.0], "mid": [0.6, 0.8, 0.0], "far": [0.0, 0.0, 1.0]}
    chunks = [chunk(key, key, key, vector) for key, vector in vectors.items()]
    stub.Upsert(retriever_pb2.UpsertRequest(collection=name, chunks=chunks))
    response = search(stub, name, [1.0, 0.0, 0.0], top_k=3, mode=common_pb2.SEARCH_MODE_DENSE)
    assert hit_ids(response) == ["near", "mid", "far"]
    assert response.hits[0].score == pytest.approx(best_score, abs=1e-5)
    assert response.hits[0].score > response.hits[1].score > response.hits[2].score


def test_upsert_is_idempotent_by_chunk_id(stub: Stub) -> None:
    name = unique_name("idempotent")
    create(stub, name, 8)
    first = [chunk("a", "d", "old text", _axis(1)), chunk("b", "d", "b", _axis(2))]
    stub.Upsert(retriever_pb2.UpsertRequest(collection=name, chunks=first))
    stub.Upsert(retriever_pb2.UpsertRequest(collection=name, chunks=[chunk("a", "d", "new text", _axis(1))]))
    duplicated = [chunk("c", "d", "c1", _axis(3)), chunk("c", "d", "c2", _axis(3))]
    assert stub.Upsert(retriever_pb2.UpsertRequest(collection=name, chunks=duplicated)).upserted == 1
    info = stub.DescribeCollection(retriever_pb2.DescribeCollectionRequest(name=name)).collection
    assert info.count == 3
    hits = search(stub, name, _axis(1), top_k=3).hits
    assert [(h.chunk_id, h.text) for h in hits if h.chunk_id in ("a", "c")] == [("a", "new text"), ("c", "c2")]


def test_delete_by_document_id_removes_all_its_chunks_and_nothing_else(stub: Stub) -> None:
    name = unique_name("delete")
    create(stub, name, 8)
    chunks = [chunk(f"c{i}", f"doc{i % 3}", f"t{i}", _axis(i)) for i in range(8)]
    stub.Upsert(retriever_pb2.UpsertRequest(collection=name, chunks=chunks))
    deleted = stub.Delete(retriever_pb2.DeleteRequest(collection=name, document_ids=["doc1", "absent"])).deleted
    assert deleted == 3
    remaining = search(stub, name, _axis(0), top_k=20)
    assert sorted(hit_ids(remaining)) == ["c0", "c2", "c3", "c5", "c6"]
    assert {hit.document_id for hit in remaining.hits} == {"doc0", "doc2"}
    assert stub.DescribeCollection(retriever_pb2.DescribeCollectionRequest(name=name)).collection.count == 5


def test_a_documents_chunks_come_back_in_order_and_listings_take_filters(stub: Stub) -> None:
    name = unique_name("chunks")
    create(stub, name, 8)
    chunks = [
        chunk(f"d{i % 2}-{i:05d}", f"d{i % 2}", f"text {i}", _axis(i), lang="en" if i < 4 else "fr") for i in range(8)
    ]
    stub.Upsert(retriever_pb2.UpsertRequest(collection=name, chunks=list(reversed(chunks))))
    got = stub.GetChunks(retriever_pb2.GetChunksRequest(collection=name, document_id="d1")).chunks
    assert [c.chunk_id for c in got] == ["d1-00001", "d1-00003", "d1-00005", "d1-00007"]
    assert got[0].text == "text 1" and not got[0].vector
    french = [common_pb2.Filter(field="lang", op=common_pb2.FILTER_OP_EQ, value=common_pb2.Scalar(string_value="fr"))]
    only = stub.GetChunks(retriever_pb2.GetChunksRequest(collection=name, document_id="d1", filters=french)).chunks
    assert [c.chunk_id for c in only] == ["d1-00005", "d1-00007"]
    english = [common_pb2.Filter(field="lang", op=common_pb2.FILTER_OP_EQ, value=common_pb2.Scalar(string_value="en"))]
    listed = stub.ListDocuments(retriever_pb2.ListDocumentsRequest(collection=name, filters=english)).documents
    assert [(d.document_id, d.chunks) for d in listed] == [("d0", 2), ("d1", 2)]  # chunks matching, per document
    assert (
        _code(lambda: stub.GetChunks(retriever_pb2.GetChunksRequest(collection=name)))
        == grpc.StatusCode.INVALID_ARGUMENT
    )


def test_collections_are_listed_described_and_dropped(stub: Stub) -> None:
    name = unique_name("lifecycle")
    info = create(stub, name, 16, metric=retriever_pb2.METRIC_IP, disable_full_text=True)
    assert (info.dimension, info.metric, info.full_text, info.count) == (16, retriever_pb2.METRIC_IP, False, 0)
    assert info.index_type == retriever_pb2.INDEX_TYPE_HNSW
    request = retriever_pb2.CreateCollectionRequest(name=name, dimension=16, metric=retriever_pb2.METRIC_IP)
    assert _code(lambda: stub.CreateCollection(request)) == grpc.StatusCode.ALREADY_EXISTS
    again = stub.CreateCollection(
        retriever_pb2.CreateCollectionRequest(
            name=name, dimension=16, metric=retriever_pb2.METRIC_IP, disable_full_text=True, if_not_exists=True
        )
    )
    assert (again.created, again.collection.dimension) == (False, 16)
    listed = stub.ListCollections(retriever_pb2.ListCollectionsRequest()).collections
    assert name in [c.name for c in listed]
    assert [c.name for c in listed] == sorted(c.name for c in listed)
    stub.DropCollection(retriever_pb2.DropCollectionRequest(name=name))
    describe = retriever_pb2.DescribeCollectionRequest(name=name)
    assert _code(lambda: stub.DescribeCollection(describe)) == grpc.StatusCode.NOT_FOUND
    drop = retriever_pb2.DropCollectionRequest(name=name)
    assert _code(lambda: stub.DropCollection(drop)) == grpc.StatusCode.NOT_FOUND


@pytest.fixture(scope="module")
def error_collections(retriever_service: ServiceProcess) -> tuple[str, str]:
    """A 4-d collection with full text and one without."""
    names = unique_name("errors"), unique_name("plain")
    with retriever_stub(retriever_service.address) as stub:
        create(stub, names[0], 4)
        create(stub, names[1], 4, disable_full_text=True)
    return names


DENSE, SPARSE, HYBRID = (
    common_pb2.SEARCH_MODE_DENSE,
    common_pb2.SEARCH_MODE_SPARSE,
    common_pb2.SEARCH_MODE_HYBRID,
)
INVALID, NOT_FOUND = grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND
#: Each: a call on (stub, full-text collection, plain collection), the code expected, a phrase of the message.
BAD_REQUESTS: dict[str, tuple[Callable[[Stub, str, str], object], grpc.StatusCode, str]] = {
    "unknown collection": (lambda s, c, p: search(s, "nope", [1, 0, 0, 0]), NOT_FOUND, "does not exist"),
    "search dimension": (lambda s, c, p: search(s, c, [1, 0, 0]), INVALID, "has dimension 4"),
    "upsert dimension": (
        lambda s, c, p: s.Upsert(retriever_pb2.UpsertRequest(collection=c, chunks=[chunk("a", "d", "t", [1, 2])])),
        INVALID,
        "chunks[0].vector has dimension 2",
    ),
    "text too long": (
        lambda s, c, p: s.Upsert(
            retriever_pb2.UpsertRequest(collection=c, chunks=[chunk("a", "d", "x" * (TEXT_BYTES + 1), [1, 0, 0, 0])])
        ),
        INVALID,
        "longer than 65535 bytes",
    ),
    "top_k 0": (lambda s, c, p: search(s, c, [1, 0, 0, 0], top_k=0), INVALID, "top_k must be 1 to 1000"),
    "top_k 1001": (lambda s, c, p: search(s, c, [1, 0, 0, 0], top_k=1001), INVALID, "top_k must be 1 to 1000"),
    "sparse without text": (lambda s, c, p: search(s, c, mode=SPARSE), INVALID, "needs query_text"),
    "hybrid without text": (lambda s, c, p: search(s, c, [1, 0, 0, 0], mode=HYBRID), INVALID, "needs query_text"),
    "dense without vector": (lambda s, c, p: search(s, c, mode=DENSE), INVALID, "needs a query vector"),
    "sparse, no full text": (
        lambda s, c, p: search(s, p, query_text="x", mode=SPARSE),
        INVALID,
        "use SEARCH_MODE_DENSE",
    ),
    "hybrid, no full text": (
        lambda s, c, p: search(s, p, [1, 0, 0, 0], query_text="x", mode=HYBRID),
        INVALID,
        "no full-text index",
    ),
    "bad name": (lambda s, c, p: create(s, "no spaces allowed", 4), INVALID, "collection name"),
    "dimension 0": (lambda s, c, p: create(s, unique_name("zero"), 0), INVALID, "dimension must be"),
    "unknown mode": (lambda s, c, p: search(s, c, [1, 0, 0, 0], mode=9), INVALID, "unknown mode"),
    "empty delete": (
        lambda s, c, p: s.Delete(retriever_pb2.DeleteRequest(collection=c)),
        INVALID,
        "give document_ids and/or filters",
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_requests_get_precise_codes_and_the_service_keeps_serving(
    stub: Stub, retriever_service: ServiceProcess, error_collections: tuple[str, str], case: str
) -> None:
    call, code, phrase = BAD_REQUESTS[case]
    with pytest.raises(grpc.RpcError) as caught:
        call(stub, *error_collections)
    assert caught.value.code() == code
    assert phrase in (caught.value.details() or "")
    assert health_status(retriever_service.address) == "SERVING"


def test_thousands_of_chunks_in_one_call_while_health_answers(stub: Stub, retriever_service: ServiceProcess) -> None:
    name = unique_name("bulk")
    create(stub, name, 384)
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((5000, 384)).astype(np.float32)
    chunks = [chunk(f"c{i}", f"doc{i // 10}", f"chunk number {i}", vectors[i].tolist(), n=i) for i in range(5000)]
    request = retriever_pb2.UpsertRequest(collection=name, chunks=chunks)
    assert request.ByteSize() > 4 << 20  # well past gRPC's default 4 MiB limit
    pending = stub.Upsert.future(request)
    # The store works in threads, so the event loop answers probes during a long write.
    assert health_status(retriever_service.address, timeout=30) == "SERVING"
    answered_while_writing = not pending.done()
    assert pending.result().upserted == 5000
    assert answered_while_writing
    assert hit_ids(search(stub, name, vectors[1234].tolist(), top_k=1)) == ["c1234"]


def test_metrics_count_rows_sizes_and_searches_by_mode(stub: Stub, retriever_service: ServiceProcess) -> None:
    name = unique_name("metrics")
    create(stub, name, 8)
    before = scrape(retriever_service.metrics_port)
    chunks = [chunk(f"c{i}", f"d{i % 2}", f"word{i}", _axis(i)) for i in range(6)]
    stub.Upsert(retriever_pb2.UpsertRequest(collection=name, chunks=chunks))
    stub.Delete(retriever_pb2.DeleteRequest(collection=name, document_ids=["d1"]))
    search(stub, name, _axis(1), mode=common_pb2.SEARCH_MODE_DENSE)
    search(stub, name, query_text="word2", mode=common_pb2.SEARCH_MODE_SPARSE)
    after = scrape(retriever_service.metrics_port)
    assert value(after, "ragmesh_retriever_rows_upserted_total", collection=name) == 6
    assert value(after, "ragmesh_retriever_rows_deleted_total", collection=name) == 3
    assert value(after, "ragmesh_retriever_collection_rows", collection=name) == 3
    for mode in ("dense", "sparse"):
        grown = value(after, "ragmesh_retriever_search_seconds_count", mode=mode)
        assert grown == value(before, "ragmesh_retriever_search_seconds_count", mode=mode) + 1


def test_data_survives_a_restart_and_a_second_process_cannot_open_the_path(tmp_path: Path, log_dir: Path) -> None:
    env = {"RAGMESH_RETRIEVER_URI": str(tmp_path / "nested" / "store.db")}
    first = ServiceProcess("retriever", env, log_dir)
    try:
        first.wait_serving()
        with retriever_stub(first.address) as stub:
            create(stub, "kept", 8)
            chunks = [chunk(f"c{i}", "d", f"persistent text {i}", _axis(i), i=i) for i in range(5)]
            stub.Upsert(retriever_pb2.UpsertRequest(collection="kept", chunks=chunks))
            before = search(stub, "kept", _axis(2), top_k=5, query_text="persistent text 2")
        intruder = ServiceProcess("retriever", env, log_dir)
        try:
            assert intruder.process.wait(timeout=120) == 1
            assert "in use by another process" in intruder.log_tail()
        finally:
            intruder.terminate()
        assert health_status(first.address) == "SERVING"
    finally:
        first_exit = first.terminate()
    assert first_exit == 0
    second = ServiceProcess("retriever", env, log_dir)
    try:
        second.wait_serving()
        with retriever_stub(second.address) as stub:
            after = search(stub, "kept", _axis(2), top_k=5, query_text="persistent text 2")
            info = stub.DescribeCollection(retriever_pb2.DescribeCollectionRequest(name="kept")).collection
    finally:
        second.terminate()
    assert hit_ids(after) == hit_ids(before)
    assert after.mode == common_pb2.SEARCH_MODE_HYBRID
    assert [dict(hit.metadata) for hit in after.hits] == [dict(hit.metadata) for hit in before.hits]
    assert info.count == 5
