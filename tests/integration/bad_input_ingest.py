"""Malformed Ingest streams to the orchestrator (see bad_input_rows.py)."""

# The rows hold deliberately invalid values (unknown enum numbers, ints as enums).
# mypy: disable-error-code="arg-type"

from __future__ import annotations

import math

from tests.integration.bad_input_shapes import (
    BAD,
    BAD_UTF8_FIELD_1,
    ING,
    OK,
    ORC,
    Row,
    _doc,
    _ingest,
)
from tests.support.raw_grpc import length_delimited, nested_struct

INGEST_ROWS = [
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
