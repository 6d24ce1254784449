"""The parsing library's data: segments, parsed documents, limits and the rejection error.

Everything here is a plain frozen dataclass (no protobuf), so the orchestrator's ingestion
core and the task-engine worker can share it, and results pickle cheaply between the
parser pool's worker processes and the caller.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.common.config import MIB, Env

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
HTML = "text/html"
MARKDOWN = "text/markdown"
PLAIN = "text/plain"
CSV = "text/csv"

#: The canonical content types :func:`services.parsing.parse` accepts.
SUPPORTED_TYPES = (PDF, DOCX, XLSX, HTML, MARKDOWN, PLAIN, CSV)

#: Segment kinds, from the document's structure.
KINDS = ("heading", "paragraph", "list_item", "table", "code", "text")


@dataclass(frozen=True)
class Segment:
    """A unit of text that should stay together in one chunk.

    ``section`` is the heading path in force; a heading's own path ends with itself, so
    it shares its section with the content that follows it. ``page`` is 1-based, for
    paged formats (PDF), else None.
    """

    text: str
    kind: str
    page: int | None = None
    section: tuple[str, ...] = ()


@dataclass(frozen=True)
class ParsedDocument:
    """A document's text as ordered segments, with its canonical type, pages and title."""

    content_type: str
    segments: list[Segment]
    pages: int | None = None
    title: str | None = None

    @property
    def chars(self) -> int:
        """Characters of text in all segments."""
        return sum(len(segment.text) for segment in self.segments)


class DocumentRejected(Exception):
    """A document that cannot or must not be parsed; ``reason`` says what is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __reduce__(self) -> tuple[type[DocumentRejected], tuple[str]]:
        # Crosses the worker-process boundary by pickle: keep the reason.
        return (DocumentRejected, (self.reason,))


@dataclass(frozen=True)
class ParseLimits:
    """What one document may cost; each breach rejects the document, naming the limit.

    ``max_uncompressed_bytes`` and ``max_compression_ratio`` apply to zip containers
    (DOCX, XLSX) before any XML is read; ``time_seconds`` and ``memory_mb`` are enforced
    by :class:`services.parsing.ParserPool` on its worker processes.
    """

    max_bytes: int = 50 * MIB
    max_pages: int = 2000
    max_chars: int = 20_000_000
    max_uncompressed_bytes: int = 200 * MIB
    max_compression_ratio: float = 100.0
    time_seconds: float = 60.0
    memory_mb: int = 1024


@dataclass(frozen=True)
class ParseSettings:
    """Parsing configuration of a service: the limits plus the number of worker processes."""

    limits: ParseLimits = field(default_factory=ParseLimits)
    workers: int = 2

    @classmethod
    def from_env(cls, env: Env) -> ParseSettings:
        """From ``<prefix>PARSE_*`` variables, e.g. ``RAGMESH_ORCHESTRATOR_PARSE_MAX_BYTES``."""
        default = ParseLimits()
        limits = ParseLimits(
            max_bytes=env.integer("parse_max_bytes", default.max_bytes, minimum=1),
            max_pages=env.integer("parse_max_pages", default.max_pages, minimum=1),
            max_chars=env.integer("parse_max_chars", default.max_chars, minimum=1),
            max_uncompressed_bytes=env.integer(
                "parse_max_uncompressed_bytes", default.max_uncompressed_bytes, minimum=1
            ),
            max_compression_ratio=env.number("parse_max_compression_ratio", default.max_compression_ratio, minimum=1),
            time_seconds=env.number("parse_timeout_seconds", default.time_seconds, minimum=0.1),
            memory_mb=env.integer("parse_memory_mb", default.memory_mb, minimum=128),
        )
        return cls(limits=limits, workers=env.integer("parse_workers", 2, minimum=1, maximum=64))
