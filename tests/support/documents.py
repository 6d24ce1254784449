"""Build small real documents (PDF, DOCX, XLSX, HTML, Markdown) with known facts, and hostile ones.

PDFs are written with reportlab (BSD), Word files with python-docx, workbooks with
openpyxl; the hostile files (encrypted, truncated, many pages, zip bombs) with pypdf and
zipfile. The misbehaving
parse functions the parser-pool tests inject are in tests/support/bad_parsers.py.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

import docx
import openpyxl
from pypdf import PdfReader, PdfWriter
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas


@dataclass(frozen=True)
class Heading:
    """A PDF outline entry (bookmark) starting on ``page`` (1-based) at ``level`` (0 = top)."""

    title: str
    page: int
    level: int = 0


def pdf(pages: Sequence[Sequence[str]], outline: Sequence[Heading] = (), title: str = "") -> bytes:
    """A PDF whose page i holds the paragraphs ``pages[i]`` (one line each), with an outline."""
    buffer = io.BytesIO()
    sheet = canvas.Canvas(buffer, pagesize=A4, invariant=True)
    sheet.setTitle(title)
    for number, paragraphs in enumerate(pages, start=1):
        sheet.bookmarkPage(f"page{number}")
        for heading in outline:
            if heading.page == number:
                sheet.addOutlineEntry(heading.title, f"page{number}", level=heading.level)
        y = 780
        for paragraph in paragraphs:
            sheet.drawString(60, y, paragraph)
            y -= 40  # a gap that pypdf turns into a blank line: paragraphs stay apart
        sheet.showPage()
    sheet.save()
    return buffer.getvalue()


def blank_pdf(pages: int) -> bytes:
    """A PDF of ``pages`` empty pages, written in milliseconds."""
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=200, height=200)
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def encrypted_pdf(content: bytes, password: str = "secret") -> bytes:
    """``content`` re-written with a user password (RC4, which pypdf writes without extras)."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(content)))
    writer.encrypt(user_password=password, owner_password=password, algorithm="RC4-128")
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def word(blocks: Sequence[tuple[str, object]], title: str = "") -> bytes:
    """A DOCX from ("h1".."h3" | "p" | "li" | "table", value) blocks; a table value is rows of cells."""
    document = docx.Document()
    document.core_properties.title = title
    for kind, value in blocks:
        if kind.startswith("h"):
            document.add_heading(str(value), level=int(kind[1:]))
        elif kind == "p":
            document.add_paragraph(str(value))
        elif kind == "li":
            document.add_paragraph(str(value), style="List Bullet")
        elif kind == "table":
            rows = [list(map(str, row)) for row in value]  # type: ignore[attr-defined]
            table = document.add_table(rows=len(rows), cols=len(rows[0]))
            for cells, row in zip(table.rows, rows, strict=True):
                for cell, text in zip(cells.cells, row, strict=True):
                    cell.text = text
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def workbook(sheets: dict[str, list[list[object]]]) -> bytes:
    """An XLSX with the given sheets of rows."""
    book = openpyxl.Workbook()
    book.remove(book.active)  # type: ignore[arg-type]
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def zip_bomb_docx(uncompressed_bytes: int) -> bytes:
    """A DOCX-shaped zip whose document.xml inflates to ``uncompressed_bytes`` of padding."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with archive.open("word/document.xml", "w", force_zip64=True) as part:
            piece = b" " * (1024 * 1024)
            for _ in range(uncompressed_bytes // len(piece)):
                part.write(piece)
    return buffer.getvalue()


def lying_zip_docx(uncompressed_bytes: int, declared: int) -> bytes:
    """A DOCX-shaped zip whose headers claim document.xml is ``declared`` bytes; it inflates to more."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("word/document.xml", b" " * uncompressed_bytes)
    content = bytearray(buffer.getvalue())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):  # local and central headers
        at = content.find(signature)
        content[at + offset : at + offset + 4] = declared.to_bytes(4, "little")
    return bytes(content)


HTML_PAGE = """<!DOCTYPE html>
<html><head><title>Station handbook</title><style>.x{color:red}</style>
<script>var tracking = "SCRIPT-TEXT";</script></head>
<body>
<header class="site-header"><a href="/">Home</a> HEADER-TEXT</header>
<nav><ul><li>NAV-TEXT</li></ul></nav>
<div id="cookie-consent">COOKIE-TEXT We use cookies.</div>
<main>
  <article>
    <h1>Operations</h1>
    <p>The station orbits at <b>408 km</b>.</p>
    <h2>Docking</h2>
    <p>Docking port 3 is reserved for cargo.</p>
    <ul><li>Check the seals.</li><li>Open the hatch.</li></ul>
    <table><tr><th>Port</th><th>Use</th></tr><tr><td>1</td><td>crew</td></tr></table>
    <div class="social-share">SHARE-TEXT on social media</div>
    <p hidden>HIDDEN-TEXT</p>
    <h2>Power</h2>
    <p>The arrays produce 120 kW.</p>
    <pre>power --status
  ok</pre>
  </article>
  <aside>ASIDE-TEXT related links</aside>
  <form><input name="q"> FORM-TEXT</form>
</main>
<footer>FOOTER-TEXT © 2026</footer>
</body></html>
"""

#: Text that must not be indexed from HTML_PAGE.
HTML_BOILERPLATE = (
    "SCRIPT-TEXT",
    "HEADER-TEXT",
    "NAV-TEXT",
    "COOKIE-TEXT",
    "ASIDE-TEXT",
    "FORM-TEXT",
    "FOOTER-TEXT",
    "SHARE-TEXT",
    "HIDDEN-TEXT",
)
