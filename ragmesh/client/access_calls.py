"""The calls of per-document access lists and of sources, as both client faces make them
(see :class:`ragmesh.client.base.Call`)."""

from __future__ import annotations

from collections.abc import Sequence

from ragmesh.client.base import Call
from ragmesh.v1 import orchestrator_pb2


def access_call(document_ids: Sequence[str], access: Sequence[str], collection: str) -> Call[int]:
    """SetDocumentAccess: the number of chunks whose access list changed."""
    request = orchestrator_pb2.SetDocumentAccessRequest(
        collection=collection or "default", document_ids=list(document_ids), access=list(access)
    )
    return Call("SetDocumentAccess", request, lambda reply: int(reply.chunks_updated))


def sources_call() -> Call[list[orchestrator_pb2.SourceInfo]]:
    """ListSources: the sources whose collection the caller may read."""
    return Call("ListSources", orchestrator_pb2.ListSourcesRequest(), lambda reply: list(reply.sources))


def source_status_call(name: str) -> Call[orchestrator_pb2.SourceStatus]:
    """GetSourceStatus: a source and its last sync."""
    return Call("GetSourceStatus", orchestrator_pb2.GetSourceStatusRequest(name=name), lambda reply: reply.status)


def sync_source_call(name: str) -> Call[str]:
    """SyncSource: the id of the sync's job."""
    return Call("SyncSource", orchestrator_pb2.SyncSourceRequest(name=name), lambda reply: str(reply.job_id))
