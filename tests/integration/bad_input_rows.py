"""The rows of the bad-input table (tests/integration/test_bad_input.py): one malformed
request each, the precise status code it must get and a piece of the message a caller
can act on. Kept apart from the test so the table reads as data."""

# The rows hold deliberately invalid values (unknown enum numbers, ints as enums).
# mypy: disable-error-code="arg-type"
from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import grpc
from google.protobuf.message import Message

from ragmesh.v1 import common_pb2, embedder_pb2, generator_pb2, orchestrator_pb2, retriever_pb2
from ragmesh.vocabulary.limits import MAX_QUERY_FILTERS
from tests.support.raw_grpc import Request, length_delimited, nested_struct

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
ORCHESTRATOR_ROWS = [
    Row("empty query", ORC, Q, _query(query=""), BAD, "query is empty"),
    Row("whitespace query", ORC, Q, _query(query=" \n\t "), BAD, "query is empty"),
    Row("query over 4000 chars", ORC, Q, _query(query="x" * 4001), BAD, "the limit is 4000"),
    Row("negative top_k", ORC, Q, _query(top_k=-1), BAD, "top_k must be between 1 and 50"),
    Row("top_k 51", ORC, Q, _query(top_k=51), BAD, "top_k must be between 1 and 50"),
    Row("enormous top_k", ORC, Q, _query(top_k=2**31 - 1), BAD, "top_k must be between 1 and 50"),
    Row("candidates 201", ORC, Q, _query(options=_options(candidates=201)), BAD, "candidates must be between"),
    Row(
        "mmr_lambda NaN",
        ORC,
        Q,
        _query(options=_options(mmr_lambda=math.nan)),
        BAD,
        "mmr_lambda must be between 0 and 1",
    ),
    Row(
        "mmr_lambda inf",
        ORC,
        Q,
        _query(options=_options(mmr_lambda=math.inf)),
        BAD,
        "mmr_lambda must be between 0 and 1",
    ),
    Row(
        "mmr_lambda negative",
        ORC,
        Q,
        _query(options=_options(mmr_lambda=-0.5)),
        BAD,
        "mmr_lambda must be between 0 and 1",
    ),
    Row(
        "temperature NaN",
        ORC,
        Q,
        _query(options=_options(sampling=_sampling(temperature=math.nan))),
        BAD,
        "sampling.temperature must be a finite number",
    ),
    Row(
        "top_p -inf",
        ORC,
        Q,
        _query(options=_options(sampling=_sampling(top_p=-math.inf))),
        BAD,
        "sampling.top_p must be a finite number",
    ),
    Row("unknown rerank enum", ORC, Q, _query(options=_options(rerank=99)), BAD, "unknown rerank method 99"),
    Row("unknown search_mode enum", ORC, Q, _query(options=_options(search_mode=42)), BAD, "unknown search_mode 42"),
    Row(
        "unknown conversation_query enum",
        ORC,
        Q,
        _query(options=_options(conversation_query=7)),
        BAD,
        "unknown conversation_query 7",
    ),
    Row(
        "filter op unspecified",
        ORC,
        Q,
        _query(filters=[clause("lang", 0, scalar(string_value="en"))]),
        BAD,
        "filters[0]: op must be one of",
    ),
    Row(
        "filter op 99",
        ORC,
        Q,
        _query(filters=[clause("lang", 99, scalar(string_value="en"))]),
        BAD,
        "filters[0]: op must be one of",
    ),
    Row("filter Scalar without kind", ORC, Q, _query(filters=[NO_KIND]), BAD, "a filter value must set one of"),
    Row("filter IN mixed kinds", ORC, Q, _query(filters=[MIXED_IN]), BAD, "one kind"),
    Row("filter field injection", ORC, Q, _query(filters=[INJECTION_FIELD]), BAD, "field"),
    Row(
        "filter LT on a string",
        ORC,
        Q,
        _query(filters=[clause("year", LT, scalar(string_value="2020"))]),
        BAD,
        "number",
    ),
    Row(
        f"{MAX_QUERY_FILTERS + 1} filters",
        ORC,
        Q,
        _query(filters=[clause("lang", EQ, scalar(string_value="en"))] * (MAX_QUERY_FILTERS + 1)),
        BAD,
        f"the limit is {MAX_QUERY_FILTERS}",
    ),
    Row("collection name injection", ORC, Q, _query(collection='x" or 1==1'), BAD, "collection name"),
    Row("unknown collection", ORC, Q, _query(collection="no_such_collection_zz"), NOT_FOUND, "no_such_collection_zz"),
    Row("65 history turns", ORC, Q, _query(history=[_turn()] * 65), BAD, "the limit is 64"),
    Row(
        "system turn in history",
        ORC,
        Q,
        _query(history=[_turn(role=common_pb2.ROLE_SYSTEM)]),
        BAD,
        "role must be user or assistant",
    ),
    Row("history role unspecified", ORC, Q, _query(history=[_turn(role=0)]), BAD, "history[0]: role must be"),
    Row("history role 42", ORC, Q, _query(history=[_turn(role=42)]), BAD, "history[0]: role must be"),
    Row("empty history content", ORC, Q, _query(history=[_turn(content=" ")]), BAD, "history[0]: content is empty"),
    Row("invalid UTF-8 query", ORC, Q, BAD_UTF8_FIELD_1, BAD, "not a valid ragmesh.v1.QueryRequest"),
    Row("stream: empty query", ORC, QS, _query(query=""), BAD, "query is empty", "stream"),
    Row(
        "stream: NaN temperature",
        ORC,
        QS,
        _query(options=_options(sampling=_sampling(temperature=math.nan))),
        BAD,
        "finite number",
        "stream",
    ),
    Row(
        "GetIngestJob empty id",
        ORC,
        "GetIngestJob",
        orchestrator_pb2.GetIngestJobRequest(job_id=""),
        BAD,
        "job_id is empty",
    ),
    Row(
        # The session's orchestrator runs without Redis: jobs need the task engine, and say so
        # (an unknown id with a broker is NOT_FOUND: tests/unit/test_jobs.py).
        "GetIngestJob without a broker",
        ORC,
        "GetIngestJob",
        orchestrator_pb2.GetIngestJobRequest(job_id="0" * 32),
        grpc.StatusCode.FAILED_PRECONDITION,
        "background jobs need a broker",
    ),
    Row(
        "GetIngestJob malformed id",
        ORC,
        "GetIngestJob",
        orchestrator_pb2.GetIngestJobRequest(job_id="../../etc\x00"),
        BAD,
        "job_id",
    ),
    Row(
        "WatchIngestJob empty id",
        ORC,
        "WatchIngestJob",
        orchestrator_pb2.GetIngestJobRequest(job_id=""),
        BAD,
        "job_id is empty",
        "stream",
    ),
    Row(
        "SubmitIngestJob no documents",
        ORC,
        "SubmitIngestJob",
        orchestrator_pb2.SubmitIngestJobRequest(collection=ORCH_COLLECTION),
        BAD,
        "documents is empty",
    ),
    Row(
        "DeleteDocuments no ids",
        ORC,
        "DeleteDocuments",
        orchestrator_pb2.DeleteDocumentsRequest(collection=ORCH_COLLECTION),
        BAD,
        "document_ids must hold 1 to",
    ),
    Row(
        "DeleteDocuments an empty id",
        ORC,
        "DeleteDocuments",
        orchestrator_pb2.DeleteDocumentsRequest(collection=ORCH_COLLECTION, document_ids=["a", ""]),
        BAD,
        "empty id",
    ),
    Row(
        "DeleteDocuments empty collection",
        ORC,
        "DeleteDocuments",
        orchestrator_pb2.DeleteDocumentsRequest(collection="", document_ids=["a"]),
        BAD,
        "collection name",
    ),
    Row("ingest invalid collection", ORC, ING, _ingest(_doc(), collection="bad name!"), BAD, "collection name", "bidi"),
    Row("ingest invalid UTF-8", ORC, ING, [BAD_UTF8_FIELD_1], BAD, "not a valid ragmesh.v1.IngestRequest", "bidi"),
    Row(
        "ingest Struct past the parser depth",
        ORC,
        ING,
        [
            length_delimited(
                2, length_delimited(1, b"d") + length_delimited(2, b"t") + length_delimited(3, nested_struct(120))
            )
        ],
        BAD,
        "not a valid ragmesh.v1.IngestRequest",
        "bidi",
    ),
    Row(
        "ingest metadata nested 10 deep",
        ORC,
        ING,
        _ingest(_doc(a={"b": {"c": {"d": {"e": {"f": {"g": {"h": {"i": {"j": 1}}}}}}}}})),
        OK,
        "",
        "bidi",
        "nested deeper than 8",
    ),
    Row(
        "ingest 1,001 documents in one message",
        ORC,
        ING,
        _ingest(*(_doc(f"d{i}", "x") for i in range(1001))),
        BAD,
        "the limit is 1000 per message",
        "bidi",
    ),
    Row("ingest duplicate ids", ORC, ING, _ingest(_doc("dup"), _doc("dup")), OK, "", "bidi", "duplicate document id"),
    Row("ingest empty id", ORC, ING, _ingest(_doc("")), OK, "", "bidi", "document id is empty"),
    Row("ingest empty text", ORC, ING, _ingest(_doc(text=" ")), OK, "", "bidi", "document text is empty"),
    Row(
        "ingest metadata key injection",
        ORC,
        ING,
        _ingest(_doc(**{'a"]==1 or metadata["b': 1})),
        OK,
        "",
        "bidi",
        "metadata key",
    ),
    Row("ingest metadata NaN", ORC, ING, _ingest(_doc(score=math.nan)), OK, "", "bidi", "NaN"),
    Row("ingest id of 256 four-byte chars", ORC, ING, _ingest(_doc("\U0001f600" * 256)), OK, "", "bidi", "bytes"),
]
EMBEDDER_ROWS = [
    Row("no texts", E, "Embed", embedder_pb2.EmbedRequest(), BAD, "texts is empty"),
    Row("an empty text", E, "Embed", embedder_pb2.EmbedRequest(texts=["ok", " "]), BAD, "texts[1] are empty"),
    Row("513 texts", E, "Embed", embedder_pb2.EmbedRequest(texts=["a"] * 513), BAD, "the limit is 512"),
    Row("unknown kind", E, "Embed", embedder_pb2.EmbedRequest(texts=["a"], kind=99), BAD, "unknown kind 99"),
    Row("too many tokens", E, "Embed", embedder_pb2.EmbedRequest(texts=["word " * 2000]), BAD, "set truncate=true"),
    Row(
        "over max_request_chars",
        E,
        "Embed",
        embedder_pb2.EmbedRequest(texts=["a" * 500_001] * 8),
        BAD,
        "the limit is 4000000",
    ),
    Row("invalid UTF-8", E, "Embed", BAD_UTF8_FIELD_1, BAD, "not a valid ragmesh.v1.EmbedRequest"),
    Row("tokenize nothing", E, "Tokenize", embedder_pb2.TokenizeRequest(), BAD, "texts is empty"),
]
RETRIEVER_ROWS = [
    Row(
        "create: empty name",
        R,
        "CreateCollection",
        retriever_pb2.CreateCollectionRequest(name="", dimension=4),
        BAD,
        "collection name",
    ),
    Row(
        "create: name starts with a digit",
        R,
        "CreateCollection",
        retriever_pb2.CreateCollectionRequest(name="1abc", dimension=4),
        BAD,
        "collection name",
    ),
    Row(
        "create: name injection",
        R,
        "CreateCollection",
        retriever_pb2.CreateCollectionRequest(name='x" or "1', dimension=4),
        BAD,
        "collection name",
    ),
    Row(
        "create: dimension 0",
        R,
        "CreateCollection",
        retriever_pb2.CreateCollectionRequest(name="bad_dim", dimension=0),
        BAD,
        "dimension must be 1 to 32768",
    ),
    Row(
        "create: dimension -1",
        R,
        "CreateCollection",
        retriever_pb2.CreateCollectionRequest(name="bad_dim", dimension=-1),
        BAD,
        "dimension must be 1 to 32768",
    ),
    Row(
        "create: enormous dimension",
        R,
        "CreateCollection",
        retriever_pb2.CreateCollectionRequest(name="bad_dim", dimension=2**31 - 1),
        BAD,
        "dimension must be 1 to 32768",
    ),
    Row(
        "create: unknown metric",
        R,
        "CreateCollection",
        retriever_pb2.CreateCollectionRequest(name="bad_enum", dimension=4, metric=99),
        BAD,
        "unknown metric 99",
    ),
    Row(
        "create: unknown index",
        R,
        "CreateCollection",
        retriever_pb2.CreateCollectionRequest(name="bad_enum", dimension=4, index_type=99),
        BAD,
        "unknown index_type 99",
    ),
    Row(
        "describe: empty name",
        R,
        "DescribeCollection",
        retriever_pb2.DescribeCollectionRequest(name=""),
        BAD,
        "collection name",
    ),
    Row(
        "describe: unknown",
        R,
        "DescribeCollection",
        retriever_pb2.DescribeCollectionRequest(name="no_such_zz"),
        NOT_FOUND,
        "no_such_zz",
    ),
    Row("drop: empty name", R, "DropCollection", retriever_pb2.DropCollectionRequest(name=""), BAD, "collection name"),
    Row("search: top_k 0", R, "Search", _search(top_k=0), BAD, "top_k must be 1 to 1000"),
    Row("search: top_k 1001", R, "Search", _search(top_k=1001), BAD, "top_k must be 1 to 1000"),
    Row("search: NaN in vector", R, "Search", _search(vector=[math.nan, 0, 0, 0]), BAD, "NaN or infinite"),
    Row("search: inf in vector", R, "Search", _search(vector=[math.inf, 0, 0, 0]), BAD, "NaN or infinite"),
    Row("search: wrong dimension", R, "Search", _search(vector=[0.5] * 7), BAD, "has dimension 4"),
    Row("search: no vector", R, "Search", _search(vector=[]), BAD, "needs a query vector"),
    Row("search: unknown mode", R, "Search", _search(mode=9), BAD, "unknown mode 9"),
    Row(
        "search: sparse without text", R, "Search", _search(mode=common_pb2.SEARCH_MODE_SPARSE), BAD, "needs query_text"
    ),
    Row("search: unknown collection", R, "Search", _search(collection="no_such_zz"), NOT_FOUND, "no_such_zz"),
    Row("search: empty collection name", R, "Search", _search(collection=""), BAD, "collection name"),
    Row("search: Scalar without kind", R, "Search", _search(filters=[NO_KIND]), BAD, "filters[0]"),
    Row("search: IN mixed kinds", R, "Search", _search(filters=[MIXED_IN]), BAD, "one kind"),
    Row(
        "search: IN with 1001 values",
        R,
        "Search",
        _search(filters=[clause("n", IN, values=[scalar(int_value=i) for i in range(1001)])]),
        BAD,
        "1000",
    ),
    Row("search: field injection", R, "Search", _search(filters=[INJECTION_FIELD]), BAD, "field"),
    Row(
        "search: NUL in a string value",
        R,
        "Search",
        _search(filters=[clause("lang", EQ, scalar(string_value="e\x00n"))]),
        BAD,
        "control characters",
    ),
    Row(
        "search: NaN filter value",
        R,
        "Search",
        _search(filters=[clause("x", LT, scalar(double_value=math.nan))]),
        BAD,
        "finite",
    ),
    Row("search: op unspecified", R, "Search", _search(filters=[clause("x", 0, scalar(int_value=1))]), BAD, "op"),
    Row("search: 65 clauses", R, "Search", _search(filters=[clause("x", EQ, scalar(int_value=1))] * 65), BAD, "64"),
    Row("search: injection string value is data", R, "Search", _search(filters=[INJECTION_VALUE]), OK, ""),
    Row("upsert: NaN in vector", R, "Upsert", _upsert(_chunk(vector=[math.nan, 0, 0, 0])), BAD, "NaN or infinite"),
    Row("upsert: empty chunk id", R, "Upsert", _upsert(_chunk(chunk_id="")), BAD, "chunks[0].chunk_id is empty"),
    Row("upsert: wrong dimension", R, "Upsert", _upsert(_chunk(vector=[0.5] * 3)), BAD, "has dimension 3"),
    Row("upsert: NaN metadata", R, "Upsert", _upsert(_chunk(score=math.nan)), BAD, "NaN or infinity"),
    Row("upsert: malformed id", R, "Upsert", _upsert(_chunk(chunk_id="c\x01")), BAD, "control characters"),
    Row("upsert: duplicate ids (last wins)", R, "Upsert", _upsert(_chunk("same"), _chunk("same")), OK, ""),
    Row("upsert: invalid UTF-8", R, "Upsert", BAD_UTF8_FIELD_1, BAD, "not a valid ragmesh.v1.UpsertRequest"),
    Row(
        "upsert: Struct past the parser depth",
        R,
        "Upsert",
        length_delimited(1, b"c") + length_delimited(2, length_delimited(4, nested_struct(120))),
        BAD,
        "not a valid ragmesh.v1.UpsertRequest",
    ),
    Row(
        "delete: nothing to match",
        R,
        "Delete",
        retriever_pb2.DeleteRequest(collection=RETRIEVER_COLLECTION),
        BAD,
        "give document_ids and/or filters",
    ),
    Row(
        "delete: an empty id",
        R,
        "Delete",
        retriever_pb2.DeleteRequest(collection=RETRIEVER_COLLECTION, document_ids=[""]),
        BAD,
        "document_ids[0] is empty",
    ),
]
GEN = "GenerateText"
GENERATOR_ROWS = [
    Row("no messages", G, GEN, generator_pb2.GenerateRequest(), BAD, "messages is empty"),
    Row("65 messages", G, GEN, _generate([_turn()] * 65), BAD, "the limit is 64"),
    Row("role unspecified", G, GEN, _generate([_turn(role=0)]), BAD, "messages[0].role is not set"),
    Row("role 42", G, GEN, _generate([_turn(role=42)]), BAD, "messages[0].role is not set"),
    Row("empty content", G, GEN, _generate([_turn(content="")]), BAD, "messages[0].content is empty"),
    Row("temperature NaN", G, GEN, _generate(temperature=math.nan), BAD, "sampling.temperature is nan"),
    Row("temperature inf", G, GEN, _generate(temperature=math.inf), BAD, "sampling.temperature is inf"),
    Row("temperature negative", G, GEN, _generate(temperature=-1.0), BAD, "allowed 0 (greedy)"),
    Row("top_p 0", G, GEN, _generate(top_p=0.0), BAD, "allowed 0 < top_p <= 1"),
    Row("top_k -1", G, GEN, _generate(top_k=-1), BAD, "allowed 0 (off) to 1000"),
    Row("max_new_tokens 0", G, GEN, _generate(max_new_tokens=0), BAD, "sampling.max_new_tokens is 0"),
    Row(
        "max_new_tokens huge", G, GEN, _generate(max_new_tokens=2**31 - 1), BAD, "sampling.max_new_tokens is 2147483647"
    ),
    Row("repetition_penalty 5", G, GEN, _generate(repetition_penalty=5.0), BAD, "allowed 1.0 (off) to 2.0"),
    Row("9 stop sequences", G, GEN, _generate(stop=["x"] * 9), BAD, "allowed at most 8"),
    Row("empty stop sequence", G, GEN, _generate(stop=[""]), BAD, "sampling.stop[0] has 0 characters"),
    Row("prompt over max_prompt_chars", G, GEN, _generate([_turn("a" * 1_000_001)]), BAD, "the limit is 1000000"),
    Row("invalid UTF-8", G, GEN, BAD_UTF8_FIELD_1 + b"", BAD, "not a valid ragmesh.v1.GenerateRequest"),
    Row("stream: no messages", G, "Generate", generator_pb2.GenerateRequest(), BAD, "messages is empty", "stream"),
    Row("stream: top_p NaN", G, "Generate", _generate(top_p=math.nan), BAD, "sampling.top_p is nan", "stream"),
]
ROWS = ORCHESTRATOR_ROWS + EMBEDDER_ROWS + RETRIEVER_ROWS + GENERATOR_ROWS

#: Requests the public contract documents as valid that a component behind the orchestrator
#: refuses with a smaller limit: each must succeed (the orchestrator splits or fits them).
CROSS_HOP_ROWS = [
    Row(
        "delete 1001 ids (retriever takes 1000 a call)",
        ORC,
        "DeleteDocuments",
        orchestrator_pb2.DeleteDocumentsRequest(
            collection=ORCH_COLLECTION, document_ids=[f"none{i}" for i in range(1001)]
        ),
        OK,
        "",
    ),
    Row(
        "metadata of 20,000 non-ASCII chars (40 KB of UTF-8)",
        ORC,
        ING,
        _ingest(_doc("accents", note="é" * 20_000)),
        OK,
        "",
        "bidi",
    ),
    Row(
        "64 history turns (the generator takes 64 messages)",
        ORC,
        Q,
        orchestrator_pb2.QueryRequest(
            query="what is ragmesh",
            collection=ORCH_COLLECTION,
            history=[_turn("hi")] * 64,
            options=_options(sampling=_sampling(max_new_tokens=1)),
        ),
        OK,
        "",
    ),
]
ROWS = ROWS + CROSS_HOP_ROWS
