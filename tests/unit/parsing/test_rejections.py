"""Hostile and broken files: each rejected with a reason naming the problem or the limit."""

from __future__ import annotations

import dataclasses

import pytest

from services.common.config import MIB
from services.parsing import DocumentRejected, ParseLimits, detect, parse
from services.parsing.model import DOCX, PDF
from tests.support import documents

LIMITS = ParseLimits()


def _rejected(
    content: bytes, file_name: str | None, limits: ParseLimits = LIMITS, media_type: str | None = None
) -> str:
    with pytest.raises(DocumentRejected) as caught:
        parse(content, media_type, file_name, limits)
    return caught.value.reason


def test_size_above_max_bytes() -> None:
    limits = dataclasses.replace(LIMITS, max_bytes=1000)
    assert "1001 bytes, more than the limit of 1000 (max_bytes)" in _rejected(b"x" * 1001, "a.txt", limits)
    assert parse(b"x" * 1000, None, "a.txt", limits).segments[0].text == "x" * 1000


def test_too_many_pages() -> None:
    content = documents.blank_pdf(500)
    limits = dataclasses.replace(LIMITS, max_pages=100)
    assert "500 pages, more than the limit of 100 (max_pages)" in _rejected(content, "big.pdf", limits)


def test_encrypted_pdf() -> None:
    content = documents.encrypted_pdf(documents.pdf([["Secret fact."]]))
    assert "encrypted" in _rejected(content, "secret.pdf")


def test_truncated_and_corrupt_pdf() -> None:
    content = documents.pdf([["First page fact."], ["Second page fact."]])
    assert "corrupt or truncated" in _rejected(content[: len(content) // 3], "cut.pdf")
    assert "corrupt or truncated" in _rejected(b"%PDF-1.4\n" + b"\x00garbage" * 100, "junk.pdf")


def test_pdf_without_text_needs_ocr() -> None:
    assert "needs OCR" in _rejected(documents.blank_pdf(2), "scan.pdf")


def test_docx_zip_bomb_by_declared_size() -> None:
    content = documents.zip_bomb_docx(12 * MIB)
    assert len(content) < 100_000
    limits = dataclasses.replace(LIMITS, max_uncompressed_bytes=8 * MIB, max_compression_ratio=1e9)
    reason = _rejected(content, "bomb.docx", limits)
    assert "more than the limit of 8388608 (max_uncompressed_bytes): a decompression bomb" in reason


def test_docx_zip_bomb_by_ratio() -> None:
    reason = _rejected(documents.zip_bomb_docx(4 * MIB), "bomb.docx")
    assert "word/document.xml expands" in reason and "(max_compression_ratio)" in reason


def test_zip_headers_that_lie_are_caught_while_inflating() -> None:
    # The headers declare 1 KiB: the declared checks pass, inflating finds more data than declared.
    content = documents.lying_zip_docx(4 * MIB, declared=1024)
    reason = _rejected(content, "liar.docx")
    assert "the DOCX file is a corrupt zip archive (Bad CRC-32" in reason


def test_content_that_contradicts_its_extension() -> None:
    html = documents.HTML_PAGE.encode()
    assert "the extension .pdf says PDF, but the content is HTML" in _rejected(html, "report.pdf")
    assert "the extension .docx says DOCX, but the content is plain text" in _rejected(b"hello", "letter.docx")
    assert "says DOCX, but the content is PDF" in _rejected(documents.pdf([["x"]]), "x.docx")
    assert "media type text/html says HTML, but the content is PDF" in _rejected(
        documents.pdf([["x"]]), None, media_type="text/html"
    )
    xlsx = documents.workbook({"S": [["a"]]})
    assert "says DOCX, but the content is XLSX" in _rejected(xlsx, "x.docx")


def test_unsupported_types() -> None:
    assert "unsupported file type '.exe'" in _rejected(b"MZ\x90\x00", "tool.exe")
    assert "unsupported media type 'image/png'" in _rejected(b"\x89PNG", None, media_type="image/png")
    assert "binary data" in _rejected(b"\x89PNG\r\n\x1a\n\x00\x00", None)
    assert "the file is empty" in _rejected(b"", "a.txt")


def test_max_chars() -> None:
    limits = dataclasses.replace(LIMITS, max_chars=50)
    assert "more than 50 characters of text (max_chars)" in _rejected(b"word " * 20, "a.txt", limits)


def test_detect_accepts_agreeing_declarations() -> None:
    docx_bytes = documents.word([("p", "x")])
    assert detect(docx_bytes, None, "a.DOCX") == DOCX
    assert detect(docx_bytes, "application/octet-stream", None) == DOCX
    assert detect(documents.pdf([["x"]]), "application/pdf", "a.bin") == PDF


def test_markup_nested_too_deeply() -> None:
    assert "nested too deeply" in _rejected(b"<html><body>" + b"<div>" * 5000 + b"deep", "deep.html")


def test_text_that_mentions_the_pdf_marker_is_still_text() -> None:
    note = b"# Notes\n\nEvery PDF starts with the bytes %PDF-1.7 in its header.\n"
    assert detect(note, None, "notes.md") == "text/markdown"
    assert detect(b"junk\xff\xfe" + documents.pdf([["x"]]), None, None) == PDF  # junk before the header
