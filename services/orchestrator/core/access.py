"""What a caller may see and change, beyond a collection's read/write grant: the tenant's tag
on job and batch ids (another tenant's id reads as not found), and the write check on an
ingestion stream's collection."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from services.common.errors import NotFound
from services.common.principal import Principal, authorize, current_principal
from services.orchestrator.core.ingest.state import IngestBatch


async def writable(batches: AsyncIterator[IngestBatch], principal: Principal) -> AsyncIterator[IngestBatch]:
    """The batches, once the first one's collection (the one ingestion writes) is the caller's."""
    first = True
    async for batch in batches:
        if first:
            authorize(principal, batch.collection, write=True)
            first = False
        yield batch


def owner_tag(principal: Principal) -> str:
    """The tenant's tag in job and batch ids ("" with auth off): not the tenant's name."""
    if not principal.tenant:
        return ""
    return hashlib.sha256(principal.tenant.encode()).hexdigest()[:12]


def check_owner(record_id: str, kind: str) -> None:
    """NotFound unless the caller's tenant submitted ``record_id`` (with auth on)."""
    tag = owner_tag(current_principal())
    if record_id and tag and not record_id.startswith(tag + "-"):
        raise NotFound(f"no {kind} with id {record_id[:80]!r}")
