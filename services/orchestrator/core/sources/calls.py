"""The facade's calls on sources, with the same checks as ingestion: a source is listed and
its status shown to callers who may read its collection, and synced for those who may write
it (the job is then theirs to watch)."""

from __future__ import annotations

from typing import Protocol

from services.common.errors import InvalidArgument
from services.common.principal import authorize, current_principal
from services.orchestrator.core.access import owner_tag
from services.orchestrator.core.sources.manager import SourceManager
from services.orchestrator.core.sources.model import SourceSpec, SyncStatus


class SourceParts(Protocol):
    """What these calls use of the core's parts."""

    @property
    def sources(self) -> SourceManager: ...


def _check_name(name: str) -> str:
    if not name.strip():
        raise InvalidArgument("name is empty; `ragmesh sources list` shows the sources")
    return name


class SourceCalls:
    """Sources, for the principal bound to the call."""

    parts: SourceParts

    def sources(self) -> list[SourceSpec]:
        """The sources whose collection the caller may read, by name."""
        principal = current_principal()
        specs = self.parts.sources.specs
        return [specs[name] for name in sorted(specs) if principal.may(specs[name].collection)]

    async def source_status(self, name: str) -> tuple[SourceSpec, SyncStatus]:
        """A source the caller may read, and its last sync."""
        spec = self.parts.sources.spec(_check_name(name))
        authorize(current_principal(), spec.collection)
        return spec, await self.parts.sources.status(name)

    async def sync_source(self, name: str) -> str:
        """Start a sync of a source whose collection the caller may write; its job id."""
        spec = self.parts.sources.spec(_check_name(name))
        principal = current_principal()
        authorize(principal, spec.collection, write=True)
        return await self.parts.sources.submit(name, owner_tag(principal))

    def source_manager(self) -> SourceManager:
        """What the worker runs syncs with."""
        return self.parts.sources
