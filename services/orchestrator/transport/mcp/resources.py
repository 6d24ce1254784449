"""Collections as MCP resources: ``ragmesh://collections/{name}`` (its size and its first
documents) and ``ragmesh://collections/{name}/documents/{id}`` (a document's chunks), both
JSON, for the caller's collections only. Names and ids are percent-encoded in the URI."""

from __future__ import annotations

from urllib.parse import quote, unquote, urlsplit

import mcp_types as types

from services.common.errors import InvalidArgument, NotFound
from services.orchestrator.core.documents import DEFAULT_PAGE_SIZE
from services.orchestrator.transport.mcp import results
from services.orchestrator.transport.mcp.handlers import Call, collection_documents

SCHEME = "ragmesh"
JSON = "application/json"
COLLECTION_TEMPLATE = "ragmesh://collections/{name}"
DOCUMENT_TEMPLATE = "ragmesh://collections/{name}/documents/{id}"


def collection_uri(name: str) -> str:
    return f"{SCHEME}://collections/{quote(name, safe='')}"


def document_uri(collection: str, document_id: str) -> str:
    return f"{collection_uri(collection)}/documents/{quote(document_id, safe='')}"


def parse_uri(uri: str) -> tuple[str, str]:
    """(collection, document id or "") of a resource URI; InvalidArgument when it is not one of ours."""
    parts = urlsplit(uri)
    segments = parts.path.split("/")[1:] if parts.path else []
    if parts.scheme != SCHEME or parts.netloc != "collections" or len(segments) not in (1, 3) or not segments[0]:
        raise InvalidArgument(f"unknown resource {uri!r}; expected {COLLECTION_TEMPLATE} or {DOCUMENT_TEMPLATE}")
    if len(segments) == 3 and (segments[1] != "documents" or not segments[2]):
        raise InvalidArgument(f"unknown resource {uri!r}; expected {DOCUMENT_TEMPLATE}")
    return unquote(segments[0]), unquote(segments[2]) if len(segments) == 3 else ""


async def list_resources(call: Call) -> types.ListResourcesResult:
    """One resource per collection the caller may read."""
    found = []
    for summary in await call.engine.collections(call.deadline):
        description = f"Collection {summary.name}: {summary.chunks} chunks (version {summary.version})"
        found.append(types.Resource(uri=collection_uri(summary.name), name=summary.name, description=description,
                                    mime_type=JSON))  # fmt: skip
    return types.ListResourcesResult(resources=found)


def templates() -> types.ListResourceTemplatesResult:
    """The two URI templates."""
    return types.ListResourceTemplatesResult(
        resource_templates=[
            types.ResourceTemplate(uri_template=COLLECTION_TEMPLATE, name="collection", mime_type=JSON,
                                   description="A collection: its size and its first documents."),
            types.ResourceTemplate(uri_template=DOCUMENT_TEMPLATE, name="document", mime_type=JSON,
                                   description="A document of a collection: its chunks in order, with metadata."),
        ]
    )  # fmt: skip


async def read(call: Call, uri: str) -> types.ReadResourceResult:
    """A collection's summary and first page of documents, or one document."""
    collection, document_id = parse_uri(uri)
    if document_id:
        document = await call.engine.get_document(collection, document_id, call.deadline)
        body = results.document_json(collection, document)
    else:
        # Listing first: it authorizes (PERMISSION_DENIED for another tenant's collection).
        page, token = await call.engine.list_documents(collection, (DEFAULT_PAGE_SIZE, ""), "", call.deadline)
        summary = next((s for s in await call.engine.collections(call.deadline) if s.name == collection), None)
        if summary is None:
            raise NotFound(f"collection {collection!r} does not exist")
        _, count, more = await collection_documents(call, summary)
        documents = [{"document_id": d.document_id, "source": d.source, "chunks": d.chunks,
                      "uri": document_uri(collection, d.document_id)} for d in page]  # fmt: skip
        body = {"name": collection, "chunks": summary.chunks, "version": summary.version, "documents_count": count,
                "documents_more": more, "documents": documents, "more_documents": bool(token)}  # fmt: skip
    return types.ReadResourceResult(
        contents=[types.TextResourceContents(uri=uri, mime_type=JSON, text=results.json_text(body))]
    )
