"""Document parsing: PDF, DOCX, XLSX, HTML, Markdown, CSV and plain text into structured segments.

``parse`` runs in-process; ``ParserPool`` runs it in worker processes with a time and a
memory limit, off the event loop; ``group_segments`` packs segments into chunk-sized
groups that follow the document's structure. See docs/documents.md.
"""

from services.parsing.detect import detect
from services.parsing.grouping import group_segments, join_group
from services.parsing.model import (
    SUPPORTED_TYPES,
    DocumentRejected,
    ParsedDocument,
    ParseLimits,
    ParseSettings,
    Segment,
)
from services.parsing.parse import parse
from services.parsing.pool import ParserPool

__all__ = [
    "SUPPORTED_TYPES",
    "DocumentRejected",
    "ParseLimits",
    "ParseSettings",
    "ParsedDocument",
    "ParserPool",
    "Segment",
    "detect",
    "group_segments",
    "join_group",
    "parse",
]
