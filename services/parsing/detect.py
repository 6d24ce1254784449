"""Which format a document is: magic bytes checked against the declared type or extension.

The declared type (a media type, else the file name's extension) says what the caller
thinks the file is; the first bytes say what it is. When they contradict (a ``.pdf`` that
is HTML, a ``.docx`` that is not a zip) the document is rejected rather than parsed as
the wrong thing.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import PurePath

from services.parsing.model import CSV, DOCX, HTML, MARKDOWN, PDF, PLAIN, XLSX, DocumentRejected

_EXTENSIONS = {
    ".pdf": PDF,
    ".docx": DOCX,
    ".xlsx": XLSX,
    ".html": HTML,
    ".htm": HTML,
    ".xhtml": HTML,
    ".md": MARKDOWN,
    ".markdown": MARKDOWN,
    ".txt": PLAIN,
    ".text": PLAIN,
    ".csv": CSV,
}
_MEDIA_TYPES = {
    PDF: PDF,
    "application/x-pdf": PDF,
    DOCX: DOCX,
    XLSX: XLSX,
    HTML: HTML,
    "application/xhtml+xml": HTML,
    MARKDOWN: MARKDOWN,
    "text/x-markdown": MARKDOWN,
    PLAIN: PLAIN,
    CSV: CSV,
}
#: Media types that declare nothing: the content decides.
_UNDECLARED = ("", "application/octet-stream", "binary/octet-stream")
_TEXT_TYPES = (HTML, MARKDOWN, PLAIN, CSV)
_HTML_STARTS = (b"<!doctype html", b"<html", b"<head", b"<body", b"<?xml")
_NAMES = {PDF: "PDF", DOCX: "DOCX", XLSX: "XLSX", HTML: "HTML", MARKDOWN: "Markdown", PLAIN: "text", CSV: "CSV"}


def detect(content: bytes, media_type: str | None, file_name: str | None) -> str:
    """The canonical content type; DocumentRejected when unsupported or contradicted by the bytes."""
    declared, by = _declared(media_type, file_name)
    found = _sniff(content)
    if declared is None:
        if found == "binary":
            raise DocumentRejected("unsupported content: binary data that is not PDF, DOCX or XLSX")
        if found == "zip":
            raise DocumentRejected("unsupported content: a zip archive that is not DOCX or XLSX")
        return found
    if declared == found or (declared in _TEXT_TYPES and found in _TEXT_TYPES):
        return declared
    raise DocumentRejected(f"content does not match its declared type: {by} says {_NAMES[declared]}, {_found(found)}")


def _declared(media_type: str | None, file_name: str | None) -> tuple[str | None, str]:
    """The declared canonical type and what declared it; None when nothing did."""
    if media_type is not None:
        bare = media_type.split(";", 1)[0].strip().lower()
        if bare not in _UNDECLARED:
            if bare not in _MEDIA_TYPES:
                raise DocumentRejected(f"unsupported media type {bare!r}")
            return _MEDIA_TYPES[bare], f"media type {bare}"
    if file_name:
        suffix = PurePath(file_name).suffix.lower()
        if suffix:
            if suffix not in _EXTENSIONS:
                raise DocumentRejected(f"unsupported file type {suffix!r} ({file_name})")
            return _EXTENSIONS[suffix], f"the extension {suffix}"
    return None, ""


def _sniff(content: bytes) -> str:
    """What the bytes are: a canonical type, or "zip" / "binary" for anything else."""
    marker = content.find(b"%PDF-", 0, 1024)
    # PDF readers accept junk before the header; text that merely mentions "%PDF-" stays text.
    if marker != -1 and (marker <= 4 or not _is_text(content[:1024])):
        return PDF
    if content.startswith(b"PK\x03\x04"):
        return _zip_kind(content)
    head = content[:8192]
    if b"\x00" in head and not head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "binary"
    stripped = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if stripped.startswith(_HTML_STARTS) and (b"<html" in stripped or b"<body" in stripped):
        return HTML
    return PLAIN


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start > len(head) - 4  # only a character cut at the end of the sample
    return b"\x00" not in head


def _zip_kind(content: bytes) -> str:
    """DOCX or XLSX by their main part; "zip" for other archives, "binary" for a broken one."""
    try:
        names = set(zipfile.ZipFile(io.BytesIO(content)).namelist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return "binary"
    if "word/document.xml" in names:
        return DOCX
    if "xl/workbook.xml" in names:
        return XLSX
    return "zip"


def _found(found: str) -> str:
    if found == "binary":
        return "but the content is unreadable binary data (not a valid file of that type)"
    if found == "zip":
        return "but the content is a zip archive of another kind"
    if found == PLAIN:
        return "but the content is plain text"
    return f"but the content is {_NAMES[found]}"
