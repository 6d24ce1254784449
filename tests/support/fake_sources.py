"""In-memory fakes of the sources' ports (a reader over a dict, the sync state), for unit
tests of the core's syncs."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.orchestrator.core.sources.model import (
    ListingFailed,
    ReadFailed,
    SourceDocument,
    SourceEntry,
    SyncStatus,
)


@dataclass
class DictReader:
    """A source whose documents are a dict of key -> text (None: unreadable)."""

    files: dict[str, str | None] = field(default_factory=dict)
    access: dict[str, tuple[str, ...]] = field(default_factory=dict)
    broken: bool = False
    reads: list[str] = field(default_factory=list)

    async def listing(self) -> list[SourceEntry]:
        if self.broken:
            raise ListingFailed("the bucket did not answer")
        return [
            SourceEntry(key, str(hash((text, self.access.get(key)))), f"dict://{key}", self.access.get(key))
            for key, text in sorted(self.files.items())
        ]

    async def read(self, entry: SourceEntry) -> SourceDocument:
        self.reads.append(entry.key)
        text = self.files[entry.key]
        if text is None:
            raise ReadFailed("permission denied")
        return SourceDocument(entry, text=text)


@dataclass
class MemoryStates:
    """Sync state in a dict."""

    locks: dict[str, str] = field(default_factory=dict)
    saved: dict[str, dict[str, str]] = field(default_factory=dict)
    statuses: dict[str, SyncStatus] = field(default_factory=dict)

    async def claim(self, source: str, job_id: str, ttl_seconds: float) -> str:
        holder = self.locks.setdefault(source, job_id)
        return "" if holder == job_id else holder

    async def release(self, source: str, job_id: str) -> None:
        if self.locks.get(source) == job_id:
            del self.locks[source]

    async def holder(self, source: str) -> str:
        return self.locks.get(source, "")

    async def tokens(self, source: str) -> dict[str, str]:
        return dict(self.saved.get(source, {}))

    async def save_tokens(self, source: str, tokens: dict[str, str]) -> None:
        self.saved[source] = dict(tokens)

    async def status(self, source: str) -> SyncStatus | None:
        return self.statuses.get(source)

    async def save_status(self, status: SyncStatus) -> None:
        self.statuses[status.source] = status
