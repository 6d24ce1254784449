"""Domain results as MCP tool results: a text an agent reads (the answer with its numbered
citations, the sources listed under it) and the same data as structured JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import mcp_types as types

from services.common import errors
from services.orchestrator.core.documents import DocumentChunks
from services.orchestrator.core.domain import Answer, CollectionSummary, Source
from services.orchestrator.core.jobs.records import JobRecord
from services.orchestrator.transport.http.views import document_json, job_json

#: Characters of a source's text shown in the readable listing (the JSON has all of it).
EXCERPT_CHARS = 600


def source_json(source: Source) -> dict[str, Any]:
    """A source as the tools return it: where it comes from and its text."""
    metadata = dict(source.metadata)
    return {
        "number": source.number,
        "document_id": source.document_id,
        "chunk_id": source.chunk_id,
        "source": str(metadata.get("source", "")),
        "page": metadata.get("page"),
        "section": metadata.get("section"),
        "score": round(source.score, 6),
        "text": source.text,
        "metadata": metadata,
    }


def _where(source: dict[str, Any]) -> str:
    parts = [source["source"] or source["document_id"]]
    if source["page"] is not None:
        parts.append(f"p. {source['page']}")
    if source["section"]:
        parts.append(str(source["section"]))
    return ", ".join(parts)


def _listing(sources: Sequence[dict[str, Any]]) -> str:
    lines = []
    for item in sources:
        excerpt = " ".join(item["text"].split())
        if len(excerpt) > EXCERPT_CHARS:
            excerpt = excerpt[:EXCERPT_CHARS] + " ..."
        lines.append(f"[{item['number']}] {_where(item)} (document {item['document_id']}, score {item['score']:.3f})")
        lines.append(f"    {excerpt}")
    return "\n".join(lines)


def _result(text: str, structured: dict[str, Any]) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)], structured_content=structured)


def search_result(answer: Answer) -> types.CallToolResult:
    """``search``: the ranked sources."""
    sources = [source_json(s) for s in answer.sources]
    text = _listing(sources) if sources else "No passage matched."
    return _result(text, {"sources": sources, "trace_id": answer.trace_id})


def ask_result(answer: Answer) -> types.CallToolResult:
    """``ask``: the answer with its numbered citations, then its sources."""
    sources = [source_json(s) for s in answer.sources]
    cited = answer.cited_answer or answer.text
    text = cited if not sources else f"{cited}\n\nSources:\n{_listing(sources)}"
    return _result(
        text,
        {
            "answer": cited,
            "sources": sources,
            "finish_reason": answer.finish_reason.value,
            "cache": answer.cache.value,
            "trace_id": answer.trace_id,
            "timings_ms": asdict(answer.timings),
            "usage": asdict(answer.usage),
        },
    )


def collections_result(summaries: Sequence[tuple[CollectionSummary, int, bool]]) -> types.CallToolResult:
    """``list_collections``: (summary, documents counted, whether there are more than counted)."""
    items = [
        {"name": s.name, "documents": count, "documents_more": more, "chunks": s.chunks, "version": s.version}
        for s, count, more in summaries
    ]
    lines = [f"{i['name']}: {i['documents']}{'+' if i['documents_more'] else ''} documents, {i['chunks']} chunks"
             for i in items]  # fmt: skip
    return _result("\n".join(lines) or "No collection is readable with this key.", {"collections": items})


def document_result(collection: str, document: DocumentChunks) -> types.CallToolResult:
    """``get_document``: the chunks' text in order, and the chunks with their metadata."""
    body = document_json(collection, document)
    title = f"{document.document_id} ({document.source})" if document.source else document.document_id
    return _result(f"{title}\n\n" + "\n\n".join(c["text"] for c in body["chunks"]), body)


def job_result(job: JobRecord) -> types.CallToolResult:
    """``get_job`` (and ``ingest_text``'s answer): the job's state and progress."""
    body = job_json(job)
    text = (f"job {job.job_id}: {body['state']}, {body['documents_done']}/{body['documents_total']} documents done, "
            f"{body['documents_failed']} failed, {body['chunks_done']} chunks")  # fmt: skip
    for item in body["errors"]:
        text += f"\n  rejected {item['document_id']}: {item['reason']}"
    return _result(text + (f"\n  error: {job.error}" if job.error else ""), body)


def error_result(error: BaseException, trace_id: str) -> types.CallToolResult:
    """A tool error: the status name first (PERMISSION_DENIED, INVALID_ARGUMENT ...), then the
    message; an unexpected error's message names only the trace id (see public_message)."""
    status = errors.status_of(error)
    message = errors.public_message(error, trace_id)
    body = {"code": status.value, "message": message, "param": getattr(error, "param", None), "trace_id": trace_id}
    return types.CallToolResult(
        content=[types.TextContent(text=f"{status.value}: {message}")], structured_content=body, is_error=True
    )


def json_text(value: Any) -> str:
    """Compact JSON for a resource's text."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
