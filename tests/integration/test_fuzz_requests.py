"""Property-based fuzzing (hypothesis) of the orchestrator's QueryRequest and IngestRequest
and the retriever's SearchRequest, UpsertRequest and DeleteRequest, sent to the real session
services: whatever the request, the answer is OK or a caller's error (INVALID_ARGUMENT,
NOT_FOUND), never INTERNAL or UNKNOWN, and every service is SERVING afterwards.

Bounded and repeatable: derandomized, few examples per property, no generation (queries
are retrieval-only)."""

# Fuzzed enum fields are plain ints on purpose (unknown values included).
# mypy: disable-error-code="arg-type"
from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ragmesh.mesh.processes import ServiceProcess
from ragmesh.v1 import common_pb2, orchestrator_pb2, retriever_pb2
from tests.support.raw_grpc import CHANNEL_OPTIONS, all_serving, call
from tests.support.stack import unique_collection

pytestmark = pytest.mark.integration

#: A caller's error, each precise: bad input, an unknown name, or an option this server lacks
#: (cross-encoder reranking without a model is FAILED_PRECONDITION, with the variable to set).
ACCEPTABLE = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.FAILED_PRECONDITION,
}
DIMENSION = 4
FUZZ = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)

texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=40)  # control chars included
numbers = st.floats(allow_nan=True, allow_infinity=True, width=64) | st.integers(-(2**40), 2**40).map(float)
ints32 = st.integers(-(2**31), 2**31 - 1)
json_values = st.recursive(
    st.none() | st.booleans() | numbers | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=12,
)
metadata = st.dictionaries(texts, json_values, max_size=4)
scalars = st.one_of(
    st.just(common_pb2.Scalar()),
    texts.map(lambda v: common_pb2.Scalar(string_value=v)),
    st.integers(-(2**63), 2**63 - 1).map(lambda v: common_pb2.Scalar(int_value=v)),
    numbers.map(lambda v: common_pb2.Scalar(double_value=v)),
    st.booleans().map(lambda v: common_pb2.Scalar(bool_value=v)),
)
filters = st.builds(
    lambda field, op, value, values: common_pb2.Filter(field=field, op=op, value=value, values=values),
    st.sampled_from(["lang", "document_id", "chunk_id", "year"]) | texts,
    st.integers(-1, 10),
    scalars,
    st.lists(scalars, max_size=4),
)
vectors = st.lists(st.floats(allow_nan=True, allow_infinity=True, width=32), min_size=0, max_size=6)


def _struct(values: dict[str, Any]) -> Any:
    from google.protobuf.struct_pb2 import Struct

    struct = Struct()
    struct.update(values)
    return struct


@pytest.fixture(scope="module")
def targets(
    orchestrator: ServiceProcess, retriever_service: ServiceProcess, embedder_service: ServiceProcess
) -> Iterator[dict[str, Any]]:
    """Channels to the orchestrator and the retriever, and a collection in each."""
    orch = grpc.insecure_channel(orchestrator.address, options=CHANNEL_OPTIONS)
    retr = grpc.insecure_channel(retriever_service.address, options=CHANNEL_OPTIONS)
    names = {"orchestrator": unique_collection(), "retriever": unique_collection()}
    seed = orchestrator_pb2.IngestRequest(
        collection=names["orchestrator"], documents=[orchestrator_pb2.Document(id="seed", text="fuzzing the mesh")]
    )
    assert call(orch, "/ragmesh.v1.OrchestratorService/Ingest", [seed], "bidi").code == grpc.StatusCode.OK
    created = retriever_pb2.CreateCollectionRequest(name=names["retriever"], dimension=DIMENSION)
    assert call(retr, "/ragmesh.v1.RetrieverService/CreateCollection", created, "unary").code == grpc.StatusCode.OK
    yield {
        "orchestrator": orch,
        "retriever": retr,
        "names": names,
        "addresses": [s.address for s in (orchestrator, retriever_service, embedder_service)],
    }
    orch.close()
    retr.close()


def _assert_acceptable(outcome: Any, request: Any) -> None:
    assert outcome.code in ACCEPTABLE, f"{outcome.code.name}: {outcome.details!r} for {request}"


@FUZZ
@given(
    query=texts,
    top_k=ints32,
    found=st.lists(filters, max_size=3),
    mmr=st.none() | numbers,
    temperature=st.none() | numbers,
    mode=st.integers(-1, 5),
    rerank=st.integers(0, 5),
    own_collection=st.booleans(),
)
def test_fuzzed_queries_get_ok_or_a_callers_error(  # noqa: PLR0917 - one argument per strategy
    targets: dict[str, Any],
    query: str,
    top_k: int,
    found: list[common_pb2.Filter],
    mmr: float | None,
    temperature: float | None,
    mode: int,
    rerank: int,
    own_collection: bool,
) -> None:
    options = orchestrator_pb2.QueryOptions(retrieval_only=True, search_mode=mode, rerank=rerank)
    if mmr is not None:
        options.mmr_lambda = mmr
    if temperature is not None:
        options.sampling.temperature = temperature
    request = orchestrator_pb2.QueryRequest(
        query=query or "x",
        collection=targets["names"]["orchestrator"] if own_collection else "fuzz_missing_collection",
        top_k=top_k % 60 if own_collection else top_k,
        filters=found,
        options=options,
    )
    _assert_acceptable(
        call(targets["orchestrator"], "/ragmesh.v1.OrchestratorService/Query", request, "unary"), request
    )


@FUZZ
@given(documents=st.lists(st.tuples(texts, texts, metadata), max_size=3), chunk_tokens=st.integers(-5, 600))
def test_fuzzed_ingests_get_ok_or_a_callers_error(
    targets: dict[str, Any], documents: list[tuple[str, str, dict[str, Any]]], chunk_tokens: int
) -> None:
    request = orchestrator_pb2.IngestRequest(
        collection=targets["names"]["orchestrator"],
        documents=[orchestrator_pb2.Document(id=i, text=t, metadata=_struct(m)) for i, t, m in documents],
        chunking=orchestrator_pb2.ChunkingOptions(chunk_tokens=chunk_tokens),
    )
    _assert_acceptable(
        call(targets["orchestrator"], "/ragmesh.v1.OrchestratorService/Ingest", [request], "bidi"), request
    )


@FUZZ
@given(vector=vectors, top_k=ints32, found=st.lists(filters, max_size=3), text=texts, mode=st.integers(-1, 5))
def test_fuzzed_searches_get_ok_or_a_callers_error(  # noqa: PLR0917 - one argument per strategy
    targets: dict[str, Any], vector: list[float], top_k: int, found: list[common_pb2.Filter], text: str, mode: int
) -> None:
    request = retriever_pb2.SearchRequest(
        collection=targets["names"]["retriever"], vector=vector, top_k=top_k, filters=found, query_text=text, mode=mode
    )
    _assert_acceptable(call(targets["retriever"], "/ragmesh.v1.RetrieverService/Search", request, "unary"), request)


@FUZZ
@given(chunks=st.lists(st.tuples(texts, texts, texts, metadata, vectors), max_size=3))
def test_fuzzed_upserts_get_ok_or_a_callers_error(
    targets: dict[str, Any], chunks: list[tuple[str, str, str, dict[str, Any], list[float]]]
) -> None:
    request = retriever_pb2.UpsertRequest(
        collection=targets["names"]["retriever"],
        chunks=[
            common_pb2.Chunk(chunk_id=c, document_id=d, text=t, metadata=_struct(m), vector=v)
            for c, d, t, m, v in chunks
        ],
    )
    _assert_acceptable(call(targets["retriever"], "/ragmesh.v1.RetrieverService/Upsert", request, "unary"), request)


@FUZZ
@given(ids=st.lists(texts, max_size=4), found=st.lists(filters, max_size=2))
def test_fuzzed_deletes_get_ok_or_a_callers_error(
    targets: dict[str, Any], ids: list[str], found: list[common_pb2.Filter]
) -> None:
    request = retriever_pb2.DeleteRequest(collection=targets["names"]["retriever"], document_ids=ids, filters=found)
    _assert_acceptable(call(targets["retriever"], "/ragmesh.v1.RetrieverService/Delete", request, "unary"), request)


def test_every_service_serves_after_the_fuzzing(targets: dict[str, Any]) -> None:
    statuses = all_serving(targets["addresses"])
    assert set(statuses.values()) == {"SERVING"}, statuses
