"""The rows of the bad-input table (tests/integration/test_bad_input.py): one malformed
request each, the precise status code it must get and a piece of the message a caller
can act on. Kept apart from the test so the table reads as data."""

from __future__ import annotations

from ragmesh.v1 import orchestrator_pb2
from tests.integration.bad_input_components import EMBEDDER_ROWS, GENERATOR_ROWS, RETRIEVER_ROWS
from tests.integration.bad_input_ingest import INGEST_ROWS
from tests.integration.bad_input_orchestrator import ORCHESTRATOR_ROWS
from tests.integration.bad_input_shapes import (
    DIMENSION,
    ING,
    OK,
    ORC,
    ORCH_COLLECTION,
    RETRIEVER_COLLECTION,
    Q,
    Row,
    _doc,
    _ingest,
    _options,
    _sampling,
    _turn,
)

__all__ = ["DIMENSION", "ORCH_COLLECTION", "RETRIEVER_COLLECTION", "ROWS", "Row"]

ROWS = ORCHESTRATOR_ROWS + INGEST_ROWS + EMBEDDER_ROWS + RETRIEVER_ROWS + GENERATOR_ROWS

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
