"""The MCP tools: their fixed names, what they do (said so an agent can act on it) and the JSON
schema of their arguments. Write tools are listed only to keys that may write."""

from __future__ import annotations

from typing import Any

import mcp_types as types

from ragmesh.vocabulary import FilterOp, SearchMode
from ragmesh.vocabulary.limits import MAX_QUERY_FILTERS, MAX_TOP_K

SEARCH, ASK, LIST_COLLECTIONS, GET_DOCUMENT = "search", "ask", "list_collections", "get_document"
INGEST_TEXT, GET_JOB = "ingest_text", "get_job"
WRITE_TOOLS = frozenset({INGEST_TEXT, GET_JOB})
#: Documents one ``ingest_text`` call may submit.
MAX_INGEST_DOCUMENTS = 100
MAX_HISTORY_TURNS = 50

_COLLECTION = {
    "type": "string",
    "description": "Collection to use (list_collections shows yours); the server's default collection when omitted.",
}
_FILTERS = {
    "type": "array",
    "maxItems": MAX_QUERY_FILTERS,
    "description": "Metadata conditions every source must meet, ANDed, e.g. "
    '[{"field": "lang", "op": "==", "value": "en"}] or [{"field": "year", "op": "in", "values": [2024, 2025]}].',
    "items": {
        "type": "object",
        "required": ["field", "op"],
        "properties": {
            "field": {"type": "string", "description": "A metadata key of the chunks (e.g. source, lang, page)."},
            "op": {"type": "string", "enum": [op.value for op in FilterOp]},
            "value": {"type": ["string", "number", "boolean"], "description": "For every op but in / not in."},
            "values": {"type": "array", "items": {"type": ["string", "number", "boolean"]}},
        },
    },
}
_TOP_K = {"type": "integer", "minimum": 1, "maximum": MAX_TOP_K, "description": "How many sources to return."}
_MODE = {
    "type": "string",
    "enum": [m.value for m in SearchMode],
    "description": "dense (meaning), sparse (keywords, BM25), hybrid (both), auto (the retriever picks).",
}


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required, "additionalProperties": False}


def _tool(name: str, title: str, description: str, schema: dict[str, Any], read_only: bool) -> types.Tool:
    hints = types.ToolAnnotations(title=title, read_only_hint=read_only, open_world_hint=False)
    return types.Tool(name=name, title=title, description=description, input_schema=schema, annotations=hints)


TOOLS: tuple[types.Tool, ...] = (
    _tool(
        SEARCH, "Search documents",
        "Find the passages of indexed documents most relevant to a query, without generating an answer. "
        "Returns ranked sources: number, document id, source (file), page/section when known, score and text.",
        _schema({"query": {"type": "string", "description": "What to look for, in natural language."},
                 "collection": _COLLECTION, "top_k": _TOP_K, "filters": _FILTERS, "search_mode": _MODE}, ["query"]),
        read_only=True,
    ),
    _tool(
        ASK, "Ask the documents",
        "Answer a question from the indexed documents. The answer cites its sources as [1], [2] ... and the "
        "sources are returned with it. Pass the earlier turns as conversation for a follow-up question. "
        "Send a progressToken to receive the answer's tokens as progress notifications while it is generated.",
        _schema({
            "question": {"type": "string", "description": "The question, in natural language."},
            "collection": _COLLECTION, "top_k": _TOP_K, "filters": _FILTERS, "search_mode": _MODE,
            "conversation": {
                "type": "array", "maxItems": MAX_HISTORY_TURNS,
                "description": "Earlier turns, oldest first: [{\"role\": \"user\"|\"assistant\", \"content\": ...}].",
                "items": {"type": "object", "required": ["role", "content"], "properties": {
                    "role": {"type": "string", "enum": ["user", "assistant"]}, "content": {"type": "string"}}},
            },
            "max_tokens": {"type": "integer", "minimum": 1, "maximum": 4096,
                           "description": "Most tokens the answer may have (the server's default when omitted)."},
        }, ["question"]),
        read_only=True,
    ),
    _tool(
        LIST_COLLECTIONS, "List collections",
        "The collections this API key may read, with how many documents and chunks each holds.",
        _schema({}, []), read_only=True,
    ),
    _tool(
        GET_DOCUMENT, "Get a document",
        "A document's text as its chunks, in order, with their metadata (source, page, section). "
        "Use the document id a search or an answer's source gave.",
        _schema({"collection": {"type": "string", "description": "The collection holding the document."},
                 "document_id": {"type": "string", "description": "The document's id."}},
                ["collection", "document_id"]),
        read_only=True,
    ),
    _tool(
        INGEST_TEXT, "Index text documents",
        "Index documents given as text (each with an id and optional metadata) into a collection, as a background "
        "ingestion job; a document with an existing id replaces it. Returns the job id: follow it with get_job.",
        _schema({
            "collection": {"type": "string", "description": "Collection to index into (created when new)."},
            "documents": {
                "type": "array", "minItems": 1, "maxItems": MAX_INGEST_DOCUMENTS,
                "items": {"type": "object", "required": ["id", "text"], "properties": {
                    "id": {"type": "string", "description": "The document's id (unique in the collection)."},
                    "text": {"type": "string", "description": "The document's text."},
                    "metadata": {"type": "object", "description": "Filterable fields, e.g. {\"source\": \"a.md\"}."},
                }},
            },
        }, ["collection", "documents"]),
        read_only=False,
    ),
    _tool(
        GET_JOB, "Get an ingestion job",
        "An ingestion job's state (pending, running, succeeded, failed) and progress: documents done and "
        "failed, chunks stored, and why each rejected document was rejected.",
        _schema({"job_id": {"type": "string", "description": "The id ingest_text returned."}}, ["job_id"]),
        read_only=False,
    ),
)  # fmt: skip


def visible_tools(may_write: bool) -> list[types.Tool]:
    """The tools a caller sees: every one with a write key, the read tools otherwise."""
    return [tool for tool in TOOLS if may_write or tool.name not in WRITE_TOOLS]
