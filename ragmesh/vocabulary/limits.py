"""Limits that cross a hop, defined once: what the retriever stores and accepts (and so what
the orchestrator must check before it calls), and the bounds of a query's options that the
request checks and the experiment settings share.

A limit lives here when two services (or two layers) must agree on it; a limit only one
component knows stays with it.
"""

from __future__ import annotations

#: Chunk and document ids: bytes of UTF-8 (a Milvus VARCHAR length is bytes).
ID_BYTES = 512
#: Chunk text and query text: bytes of UTF-8 (the largest VARCHAR Milvus allows).
TEXT_BYTES = 65_535
#: A chunk's metadata, as JSON bytes.
METADATA_BYTES = 64 * 1024
#: Filter clauses in one retriever call.
MAX_FILTER_CLAUSES = 64
#: Clauses the orchestrator itself may add to a caller's (access lists, ingestion's own
#: bookkeeping), so a caller gets the rest.
RESERVED_FILTER_CLAUSES = 16
#: Filter clauses a query may carry.
MAX_QUERY_FILTERS = MAX_FILTER_CLAUSES - RESERVED_FILTER_CLAUSES
#: Values of one IN / NOT_IN clause, and document ids of one Delete or listing call.
MAX_IN_VALUES = 1000
#: Hits one retriever search returns.
MAX_SEARCH_TOP_K = 1000
#: Sources one answer cites (``top_k`` of a query), and candidates fetched to rerank.
MAX_TOP_K = 50
MAX_CANDIDATES = 200
#: Documents in one message of the Ingest stream (clients cut their requests by it, too).
MAX_DOCUMENTS_PER_MESSAGE = 1000
#: Principals in one document's access list (the capacity of the retriever's array field).
MAX_ACCESS_PRINCIPALS = 64
#: Bytes of one principal (``user:NAME``, ``group:NAME``) as the retriever stores it.
PRINCIPAL_BYTES = 256
