"""The shapes of the bad-input table's rows (tests/integration/bad_input_rows.py): the Row
itself, the status codes and placeholders, and the builders of malformed requests."""

# The rows hold deliberately invalid values (unknown enum numbers, ints as enums).
# mypy: disable-error-code="arg-type"

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
from google.protobuf.message import Message

from ragmesh.v1 import common_pb2, generator_pb2, orchestrator_pb2, retriever_pb2
from tests.support.raw_grpc import Request

BAD = grpc.StatusCode.INVALID_ARGUMENT
NOT_FOUND = grpc.StatusCode.NOT_FOUND
OK = grpc.StatusCode.OK
#: Invalid UTF-8 in field 1 (a string in every request below that is sent raw).
BAD_UTF8_FIELD_1 = b"\x0a\x02\xff\xfe"
#: Placeholders the test replaces by the collections it created.
ORCH_COLLECTION = "@orchestrator_collection"
RETRIEVER_COLLECTION = "@retriever_collection"
DIMENSION = 4


@dataclass(frozen=True)
class Row:
    """One malformed request: ``service`` is orchestrator, embedder, retriever or generator;
    ``shape`` unary, stream or bidi; ``reason`` (for Ingest) a document error expected in
    the progress instead of a failed call."""

    name: str
    service: str
    method: str
    request: Request | Sequence[Request]
    code: grpc.StatusCode
    message: str
    shape: str = "unary"
    reason: str = field(default="")


def scalar(**kind: object) -> common_pb2.Scalar:
    return common_pb2.Scalar(**kind)


def clause(
    name: str, op: int, value: common_pb2.Scalar | None = None, values: Sequence[common_pb2.Scalar] = ()
) -> common_pb2.Filter:
    message = common_pb2.Filter(field=name, op=op, values=list(values))
    if value is not None:
        message.value.CopyFrom(value)
    return message


EQ, IN, LT = common_pb2.FILTER_OP_EQ, common_pb2.FILTER_OP_IN, common_pb2.FILTER_OP_LT
USER = common_pb2.ROLE_USER
MIXED_IN = clause("lang", IN, values=[scalar(string_value="en"), scalar(int_value=3)])
NO_KIND = clause("lang", EQ, common_pb2.Scalar())
INJECTION_FIELD = clause('lang"] == "x" or metadata["a', EQ, scalar(string_value="en"))
INJECTION_VALUE = clause("lang", EQ, scalar(string_value='en" or document_id != "'))


def _query(**fields: object) -> orchestrator_pb2.QueryRequest:
    options = fields.pop("options", None) or orchestrator_pb2.QueryOptions()
    options.retrieval_only = True  # type: ignore[attr-defined]
    fields.setdefault("collection", ORCH_COLLECTION)
    fields.setdefault("query", "what is ragmesh")
    return orchestrator_pb2.QueryRequest(options=options, **fields)


def _options(**fields: object) -> orchestrator_pb2.QueryOptions:
    return orchestrator_pb2.QueryOptions(**fields)


def _sampling(**fields: object) -> common_pb2.SamplingParams:
    return common_pb2.SamplingParams(**fields)


def _turn(content: str = "hello", role: int = USER) -> common_pb2.ChatMessage:
    return common_pb2.ChatMessage(role=role, content=content)


def _ingest(*documents: orchestrator_pb2.Document, collection: str = ORCH_COLLECTION) -> list[Message]:
    return [orchestrator_pb2.IngestRequest(collection=collection, documents=list(documents))]


def _doc(doc_id: str = "d1", text: str = "some text", **metadata: object) -> orchestrator_pb2.Document:
    document = orchestrator_pb2.Document(id=doc_id, text=text)
    if metadata:
        document.metadata.update(metadata)
    return document


def _search(**fields: object) -> retriever_pb2.SearchRequest:
    fields.setdefault("collection", RETRIEVER_COLLECTION)
    fields.setdefault("top_k", 3)
    fields.setdefault("mode", common_pb2.SEARCH_MODE_DENSE)
    fields.setdefault("vector", [0.5] * DIMENSION)
    return retriever_pb2.SearchRequest(**fields)


def _chunk(chunk_id: str = "c1", vector: Sequence[float] = (0.5,) * DIMENSION, **metadata: object) -> common_pb2.Chunk:
    chunk = common_pb2.Chunk(chunk_id=chunk_id, document_id="d1", text="text", vector=list(vector))
    if metadata:
        chunk.metadata.update(metadata)
    return chunk


def _upsert(*chunks: common_pb2.Chunk) -> retriever_pb2.UpsertRequest:
    return retriever_pb2.UpsertRequest(collection=RETRIEVER_COLLECTION, chunks=list(chunks))


def _generate(messages: Sequence[common_pb2.ChatMessage] = (), **sampling: object) -> generator_pb2.GenerateRequest:
    return generator_pb2.GenerateRequest(messages=list(messages) or [_turn()], sampling=_sampling(**sampling))


ORC, E, R, G = "orchestrator", "embedder", "retriever", "generator"
Q, QS, ING = "Query", "QueryStream", "Ingest"
