"""Sources and their syncs as the contract's messages."""

from __future__ import annotations

from ragmesh.v1 import orchestrator_pb2
from ragmesh.vocabulary.protobuf import JOB_STATE_PROTO
from services.orchestrator.core.sources.model import SourceSpec, SyncStatus


def source_message(spec: SourceSpec) -> orchestrator_pb2.SourceInfo:
    """The SourceInfo of a source."""
    return orchestrator_pb2.SourceInfo(
        name=spec.name,
        kind=spec.kind.value,
        collection=spec.collection,
        every_seconds=spec.every_seconds,
        location=spec.location,
    )


def status_message(spec: SourceSpec, status: SyncStatus) -> orchestrator_pb2.GetSourceStatusResponse:
    """The GetSourceStatus response."""
    return orchestrator_pb2.GetSourceStatusResponse(
        status=orchestrator_pb2.SourceStatus(
            source=source_message(spec),
            job_id=status.job_id,
            state=JOB_STATE_PROTO[status.state] if status.job_id else orchestrator_pb2.JOB_STATE_UNSPECIFIED,
            error=status.error,
            started_at=status.started_at,
            finished_at=status.finished_at,
            last_success_at=status.last_success_at,
            documents_added=status.added,
            documents_updated=status.updated,
            documents_unchanged=status.unchanged,
            documents_deleted=status.deleted,
            documents_failed=status.failed,
            errors=[orchestrator_pb2.DocumentError(document_id=e.document_id, reason=e.reason) for e in status.errors],
        )
    )
