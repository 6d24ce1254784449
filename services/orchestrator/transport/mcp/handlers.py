"""The tools' work: arguments in, :class:`Orchestrator` calls for the bound principal, MCP
results out. ``ask`` reports each generated piece of the answer as a progress notification;
a cancelled call (``notifications/cancelled``) cancels the handler, which closes the query's
stream and so the generation, as a cancelled gRPC stream does."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import mcp_types as types

from ragmesh.vocabulary import TextDelta
from services.common.principal import Principal
from services.common.quota import TenantLimits
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.documents import MAX_PAGE_SIZE
from services.orchestrator.core.domain import Answer, CollectionSummary
from services.orchestrator.core.facade import Orchestrator
from services.orchestrator.core.jobs.records import IngestJobRequest
from services.orchestrator.transport.http.openai_schema import BadParam
from services.orchestrator.transport.mcp import arguments, results, tools

Progress = Callable[[float, str], Awaitable[None]]
#: Pages of a collection's documents counted for list_collections (beyond: "at least").
COUNT_PAGES = 10


@dataclass
class Call:
    """One tool call: the core, who calls, the tenant's limits, the deadline and where
    progress goes."""

    engine: Orchestrator
    principal: Principal
    limits: TenantLimits | None
    deadline: Deadline
    progress: Progress

    @property
    def caller_id(self) -> str:
        return self.principal.tenant or "mcp"


async def search(call: Call, raw: dict[str, Any] | None) -> types.CallToolResult:
    """Ranked sources, no generation."""
    return results.search_result(await call.engine.answer(arguments.search_input(raw, call.caller_id), call.deadline))


async def ask(call: Call, raw: dict[str, Any] | None) -> types.CallToolResult:
    """An answer with citations; each text delta goes out as progress (tokens so far, and the text)."""
    spec = call.engine.resolve(arguments.ask_input(raw, call.caller_id))
    holding = call.limits.stream(call.principal.tenant) if call.limits is not None else contextlib.nullcontext()
    with holding:  # the tenant's concurrent-stream quota, as for QueryStream
        answer, pieces = Answer(), 0
        async with contextlib.aclosing(call.engine.query(spec, call.deadline)) as events:
            async for event in events:
                answer.add(event)
                if isinstance(event, TextDelta) and event.text:
                    pieces += 1
                    await call.progress(float(event.tokens or pieces), event.text)
    return results.ask_result(answer)


async def collection_documents(call: Call, summary: CollectionSummary) -> tuple[CollectionSummary, int, bool]:
    """A collection with its documents counted (up to :data:`COUNT_PAGES` pages)."""
    count, token = 0, ""
    for _ in range(COUNT_PAGES):
        page, token = await call.engine.list_documents(summary.name, (MAX_PAGE_SIZE, token), "", call.deadline)
        count += len(page)
        if not token:
            return summary, count, False
    return summary, count, True


async def list_collections(call: Call, raw: dict[str, Any] | None) -> types.CallToolResult:
    """The caller's collections with their document counts."""
    arguments.no_arguments(raw)
    summaries = await call.engine.collections(call.deadline)
    return results.collections_result([await collection_documents(call, s) for s in summaries])


async def get_document(call: Call, raw: dict[str, Any] | None) -> types.CallToolResult:
    """A document's chunks in order."""
    collection, document_id = arguments.document_ref(raw)
    return results.document_result(collection, await call.engine.get_document(collection, document_id, call.deadline))


async def ingest_text(call: Call, raw: dict[str, Any] | None) -> types.CallToolResult:
    """A background ingestion job of the documents; its state as submitted."""
    collection, documents = arguments.ingest_documents(raw)
    job_id = await call.engine.submit_job(IngestJobRequest(collection, documents))
    return results.job_result(await call.engine.job(job_id))


async def get_job(call: Call, raw: dict[str, Any] | None) -> types.CallToolResult:
    """An ingestion job of the caller's tenant."""
    return results.job_result(await call.engine.job(arguments.job_id(raw)))


Tool = Callable[[Call, dict[str, Any] | None], Awaitable[types.CallToolResult]]
HANDLERS: dict[str, Tool] = {
    tools.SEARCH: search,
    tools.ASK: ask,
    tools.LIST_COLLECTIONS: list_collections,
    tools.GET_DOCUMENT: get_document,
    tools.INGEST_TEXT: ingest_text,
    tools.GET_JOB: get_job,
}


def handler(name: str, principal: Principal) -> Tool:
    """The tool called ``name``, if this principal sees it; BadParam naming ``name`` otherwise."""
    found = HANDLERS.get(name)
    if found is None or (name in tools.WRITE_TOOLS and not principal.write):
        listed = ", ".join(t.name for t in tools.visible_tools(principal.write))
        raise BadParam("name", f"no tool {name!r} for this API key; the tools are {listed}")
    return found
