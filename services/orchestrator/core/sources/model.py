"""The values of sources and the port a sync reads through: a source's declaration, the
entries of its listing (each with a change token), a document read from it, and the state a
sync keeps between runs (change tokens, the one-sync-at-a-time lock, the last outcome)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from ragmesh.vocabulary import JobState
from services.orchestrator.core.domain import DocumentError


class SourceKind(StrEnum):
    """Where a source's documents live."""

    FOLDER = "folder"
    GIT = "git"
    S3 = "s3"
    WEB = "web"


@dataclass(frozen=True)
class SourceSpec:
    """A source as the sources file declares it (see docs/sources.md for every field)."""

    name: str
    kind: SourceKind
    collection: str
    #: Seconds between scheduled syncs (0: only when asked).
    every_seconds: float = 0.0
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    #: The access list of documents that get none from the source itself ("" = the tenant).
    access: tuple[str, ...] = ()
    #: A sync that would delete more than this share of the source's documents deletes nothing.
    max_delete_share: float = 0.5
    #: folder: the directory.
    path: str = ""
    #: git: a repository (URL or path), its branch and an optional sub-path.
    repository: str = ""
    branch: str = "main"
    subpath: str = ""
    #: s3: bucket, key prefix, endpoint of an S3-compatible store, region.
    bucket: str = ""
    prefix: str = ""
    endpoint_url: str = ""
    region: str = ""
    #: web: the start URL, the prefix links must have to be followed, and the crawl's bounds.
    url: str = ""
    allow_prefix: str = ""
    max_pages: int = 200
    max_depth: int = 3

    @property
    def location(self) -> str:
        """Where the documents live, for people."""
        if self.kind is SourceKind.FOLDER:
            return self.path
        if self.kind is SourceKind.GIT:
            return f"{self.repository}@{self.branch}" + (f":{self.subpath}" if self.subpath else "")
        if self.kind is SourceKind.S3:
            return f"s3://{self.bucket}/{self.prefix}"
        return self.url

    def document_id(self, key: str) -> str:
        """The id of an entry's document: the source's name, a colon, the entry's key."""
        return f"{self.name}:{key}"


@dataclass(frozen=True)
class SourceEntry:
    """One document of a listing."""

    #: Its key within the source (a relative path, an object key, a URL).
    key: str
    #: Changes whenever the document may have (mtime and size, blob id, ETag, validators).
    token: str
    #: Where it is, for people (stored as the chunks' ``source``).
    location: str
    #: Its access list when the listing knows it (a sidecar rule); None: not known yet.
    access: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SourceDocument:
    """A document read from a source: raw ``content`` to parse, or extracted ``text``."""

    entry: SourceEntry
    content: bytes = b""
    text: str = ""
    file_name: str = ""
    media_type: str = ""
    title: str = ""
    #: Its access list as the source says (an S3 tag); None: the entry's or the source's.
    access: tuple[str, ...] | None = None


class ListingFailed(Exception):
    """The source could not be listed (completely): the sync deletes nothing."""


class ReadFailed(Exception):
    """One document could not be read: reported by name, the others go on."""


class SourceReader(Protocol):
    """Reads one source (the adapters under ``adapters/sources``)."""

    async def listing(self) -> list[SourceEntry]:
        """Every document of the source now; ListingFailed when that cannot be known."""
        ...

    async def read(self, entry: SourceEntry) -> SourceDocument:
        """The document of ``entry``; ReadFailed says why it cannot be read."""
        ...


@dataclass(frozen=True)
class SyncStatus:
    """A source's last sync, as ``ragmesh sources status`` shows it."""

    source: str
    job_id: str = ""
    state: JobState = JobState.PENDING
    error: str = ""
    started_at: float = 0.0
    finished_at: float = 0.0
    last_success_at: float = 0.0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0
    failed: int = 0
    errors: tuple[DocumentError, ...] = field(default_factory=tuple)


class SourceStates(Protocol):
    """What syncs keep between runs, shared by every worker (Redis); failures raise Unavailable."""

    async def claim(self, source: str, job_id: str, ttl_seconds: float) -> str:
        """Take the source's sync lock for ``job_id``; the holder's job id ("" when taken now)."""
        ...

    async def release(self, source: str, job_id: str) -> None:
        """Give the lock back (only if ``job_id`` holds it)."""
        ...

    async def holder(self, source: str) -> str:
        """The job holding the source's lock ("" when none: a dead worker's lock expires)."""
        ...

    async def tokens(self, source: str) -> dict[str, str]:
        """Change tokens by document id, as of the last sync."""
        ...

    async def save_tokens(self, source: str, tokens: dict[str, str]) -> None: ...
    async def status(self, source: str) -> SyncStatus | None: ...
    async def save_status(self, status: SyncStatus) -> None: ...
