"""Filters end to end on the real service: every operator and combinations in all three
search modes against a Python oracle, injection attempts, and hybrid search by keyword."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
import pytest

from ragmesh.mesh.processes import ServiceProcess, health_status
from ragmesh.v1 import common_pb2, retriever_pb2
from tests.support.retriever import Stub, angle, chunk, create, hit_ids, retriever_stub, search, unique_name, where

pytestmark = pytest.mark.integration

HOSTILE_TITLE = 'x" or 1==1 or "'
LANGS = ["en", "fr", "de"]
MODES = {
    "dense": common_pb2.SEARCH_MODE_DENSE,
    "sparse": common_pb2.SEARCH_MODE_SPARSE,
    "hybrid": common_pb2.SEARCH_MODE_HYBRID,
}


def _metadata(i: int) -> dict[str, Any]:
    meta: dict[str, Any] = {"year": 2015 + i, "score": i * 0.25, "flag": i % 2 == 0, "title": f"title {i}"}
    if i != 11:  # one chunk lacks the key: it matches no clause on it, not even NE
        meta["lang"] = LANGS[i % 3]
    if i == 5:
        meta["title"] = HOSTILE_TITLE
    return meta


ROWS = {f"c{i}": (f"doc{i % 4}", _metadata(i)) for i in range(12)}


def _matches(document_id: str, metadata: dict[str, Any], field: str, op: str, operand: Any) -> bool:
    """What a clause means, in Python: missing keys match nothing."""
    if field != "document_id" and field not in metadata:
        return False
    actual = document_id if field == "document_id" else metadata[field]
    tests = {
        "EQ": lambda: actual == operand,
        "NE": lambda: actual != operand,
        "LT": lambda: actual < operand,
        "LE": lambda: actual <= operand,
        "GT": lambda: actual > operand,
        "GE": lambda: actual >= operand,
        "IN": lambda: actual in operand,
        "NOT_IN": lambda: actual not in operand,
    }
    return bool(tests[op]())


def _expected(clauses: Sequence[tuple[str, str, Any]]) -> set[str]:
    return {
        chunk_id
        for chunk_id, (document_id, metadata) in ROWS.items()
        if all(_matches(document_id, metadata, *clause) for clause in clauses)
    }


def _filter(field: str, op: str, operand: Any) -> common_pb2.Filter:
    if op in ("IN", "NOT_IN"):
        return where(field, op, values=operand)
    return where(field, op, operand)


@pytest.fixture(scope="module")
def collection(retriever_service: ServiceProcess) -> str:
    """Twelve chunks whose texts all hold the word "common" (so BM25 returns them all)."""
    name = unique_name("filters")
    with retriever_stub(retriever_service.address) as stub:
        create(stub, name, 8)
        chunks = [
            chunk(chunk_id, document_id, f"common words of chunk {chunk_id}", angle(int(chunk_id[1:])), **meta)
            for chunk_id, (document_id, meta) in ROWS.items()
        ]
        stub.Upsert(retriever_pb2.UpsertRequest(collection=name, chunks=chunks))
    return name


def _search_all(stub: Stub, collection: str, mode: str, filters: Sequence[common_pb2.Filter]) -> set[str]:
    response = search(stub, collection, angle(0), top_k=100, query_text="common", mode=MODES[mode], filters=filters)
    assert response.mode == MODES[mode]
    return set(hit_ids(response))


CASES: dict[str, list[tuple[str, str, Any]]] = {
    "eq string": [("lang", "EQ", "en")],
    "ne string (missing key excluded)": [("lang", "NE", "en")],
    "lt int": [("year", "LT", 2018)],
    "le int": [("year", "LE", 2018)],
    "gt int": [("year", "GT", 2023)],
    "ge int": [("year", "GE", 2023)],
    "gt double": [("score", "GT", 1.3)],
    "le double on ints": [("year", "LE", 2017.5)],
    "eq bool": [("flag", "EQ", True)],
    "ne bool": [("flag", "NE", True)],
    "in strings": [("lang", "IN", ["en", "de"])],
    "not in strings": [("lang", "NOT_IN", ["en"])],
    "in ints": [("year", "IN", [2016, 2020, 1999])],
    "not in numbers": [("score", "NOT_IN", [0.5, 1.0, 7])],
    "eq document_id": [("document_id", "EQ", "doc3")],
    "ne document_id": [("document_id", "NE", "doc3")],
    "in document_id": [("document_id", "IN", ["doc1", "doc2"])],
    "not in document_id": [("document_id", "NOT_IN", ["doc1", "doc2"])],
    "quotes in a value": [("title", "EQ", HOSTILE_TITLE)],
    "combined three": [("lang", "IN", ["en", "fr"]), ("year", "GE", 2018), ("flag", "EQ", False)],
    "combined doc and range": [("document_id", "NE", "doc0"), ("score", "LT", 2.0), ("score", "GE", 0.5)],
    "contradiction": [("year", "LT", 2016), ("year", "GT", 2020)],
}


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("case", list(CASES))
def test_filters_select_exactly_the_matching_chunks_in_every_mode(
    stub: Stub, collection: str, case: str, mode: str
) -> None:
    clauses = CASES[case]
    expected = _expected(clauses)
    assert expected != set(ROWS), "a case matching everything would not show that the filter works"
    assert _search_all(stub, collection, mode, [_filter(*clause) for clause in clauses]) == expected


INJECTIONS: dict[str, tuple[list[common_pb2.Filter], set[str] | None]] = {
    "field closes the key": ([where('lang"] == "en" or metadata["lang', "EQ", "x")], None),
    "field with or": ([where("lang or 1==1", "EQ", "x")], None),
    "document_id with or": ([where("document_id or true", "EQ", "x")], None),
    "field as a path": ([where('metadata["lang"]', "EQ", "en")], None),
    "field with a bracket": ([where("lang)", "EQ", "en")], None),
    "empty field": ([where("", "EQ", "en")], None),
    "value closes the string": ([where("lang", "EQ", 'en" or 1==1 or "')], set()),
    "document_id value closes the string": ([where("document_id", "EQ", 'doc0") or (document_id != "')], set()),
    "escaped quote in value": ([where("lang", "EQ", 'en\\" or true or \\"')], set()),
    "single quotes": ([where("lang", "EQ", "' or '1'=='1")], set()),
    "brackets in IN values": ([where("lang", "IN", values=['en"]', '"] or 1==1 or ["'])], set()),
    "hostile value stored and matched": ([where("title", "EQ", HOSTILE_TITLE)], {"c5"}),
    "column name as a key": ([where("text", "EQ", "common words of chunk c1")], set()),
    "primary key as a column": ([where("chunk_id", "EQ", "c1")], {"c1"}),
    "quote in a chunk id": ([where("chunk_id", "EQ", 'c1" or 1==1 or "')], set()),
    "number for chunk_id": ([where("chunk_id", "EQ", 1)], None),
    "string for an ordering": ([where("year", "LT", "2020")], None),
    "number for document_id": ([where("document_id", "EQ", 5)], None),
    "mixed IN kinds": ([where("lang", "IN", values=["en", 5])], None),
    "bool ordering": ([where("flag", "GT", True)], None),
    "NaN": ([where("year", "EQ", float("nan"))], None),
    "control character": ([where("lang", "EQ", "en\x00")], None),
    "no operator": ([common_pb2.Filter(field="lang", value=common_pb2.Scalar(string_value="en"))], None),
    "unknown operator": (
        [
            common_pb2.Filter(
                field="lang", op=common_pb2.FilterOp.ValueType(42), value=common_pb2.Scalar(string_value="en")
            )
        ],
        None,
    ),
    "value missing": ([where("lang", "EQ")], None),
}


@pytest.mark.parametrize("case", list(INJECTIONS))
def test_injection_attempts_are_refused_or_match_literally(
    stub: Stub, collection: str, retriever_service: ServiceProcess, case: str
) -> None:
    filters, expected = INJECTIONS[case]
    for mode in MODES:
        if expected is None:
            with pytest.raises(grpc.RpcError) as caught:
                _search_all(stub, collection, mode, filters)
            assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "filters[0]" in (caught.value.details() or "")
        else:
            assert _search_all(stub, collection, mode, filters) == expected
    assert health_status(retriever_service.address) == "SERVING"


def test_injected_deletes_delete_nothing(stub: Stub) -> None:
    name = unique_name("delete_injection")
    create(stub, name, 8)
    chunks = [chunk(f"c{i}", f"doc{i}", "t", angle(i), lang="en") for i in range(4)]
    stub.Upsert(retriever_pb2.UpsertRequest(collection=name, chunks=chunks))
    attempts = [
        retriever_pb2.DeleteRequest(collection=name, filters=[where("lang", "EQ", 'x" or 1==1 or "')]),
        retriever_pb2.DeleteRequest(collection=name, document_ids=['x" or document_id != "']),
        retriever_pb2.DeleteRequest(collection=name, document_ids=["doc0"], filters=[where("lang", "EQ", "fr")]),
    ]
    for attempt in attempts:
        assert stub.Delete(attempt).deleted == 0
    with pytest.raises(grpc.RpcError) as caught:
        stub.Delete(retriever_pb2.DeleteRequest(collection=name, filters=[where("lang or 1==1", "EQ", "x")]))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert stub.DescribeCollection(retriever_pb2.DescribeCollectionRequest(name=name)).collection.count == 4
    deleted = stub.Delete(retriever_pb2.DeleteRequest(collection=name, filters=[where("lang", "IN", values=["en"])]))
    assert deleted.deleted == 4


def test_hybrid_finds_a_rare_keyword_that_dense_ranks_low(stub: Stub) -> None:
    name = unique_name("hybrid")
    create(stub, name, 8)
    words = ["river", "mountain", "city", "forest", "ocean", "desert", "valley", "island"]
    chunks = [chunk(f"c{i}", f"doc{i}", f"a story about the {words[i % 8]} number {i}", angle(i)) for i in range(30)]
    # The chunk that holds the rare word points away from the query vector.
    chunks.append(chunk("rare", "docr", "the zanzibarite crystal was found", angle(31), kind="rare"))
    stub.Upsert(retriever_pb2.UpsertRequest(collection=name, chunks=chunks))
    query: dict[str, Any] = {"top_k": 5, "query_text": "where was zanzibarite found"}
    dense = search(stub, name, angle(0), mode=common_pb2.SEARCH_MODE_DENSE, **query)
    hybrid = search(stub, name, angle(0), mode=common_pb2.SEARCH_MODE_HYBRID, **query)
    sparse = search(stub, name, mode=common_pb2.SEARCH_MODE_SPARSE, **query)
    assert "rare" not in hit_ids(dense)
    assert hit_ids(sparse)[0] == "rare"
    assert "rare" in hit_ids(hybrid)
    assert hit_ids(hybrid)[1:3] == hit_ids(dense)[:2]  # dense agreement still ranks high
    scores = [hit.score for hit in hybrid.hits]
    assert scores == sorted(scores, reverse=True)
    assert all(hit.score > 0 for hit in sparse.hits)
    filtered = search(
        stub, name, angle(0), mode=common_pb2.SEARCH_MODE_HYBRID, filters=[where("kind", "NE", "rare")], **query
    )
    assert "rare" not in hit_ids(filtered)
