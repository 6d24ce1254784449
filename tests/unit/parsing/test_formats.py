"""Each format parsed from a real file built in the test: text, kind, page and section of every fact."""

from __future__ import annotations

from services.parsing import ParseLimits, Segment, parse
from services.parsing.model import CSV, DOCX, HTML, MARKDOWN, PDF, PLAIN, XLSX
from tests.support import documents

LIMITS = ParseLimits()


def _having(segments: list[Segment], fact: str) -> Segment:
    found = [segment for segment in segments if fact in segment.text]
    assert len(found) == 1, (fact, segments)
    return found[0]


def test_pdf_facts_keep_their_page_and_outline_section() -> None:
    content = documents.pdf(
        [
            ["Introduction to the station."],
            ["The station orbits at 408 km.", "It was launched in 1998."],
            ["Docking port 3 is reserved for cargo."],
        ],
        outline=[
            documents.Heading("Overview", 1),
            documents.Heading("Operations", 2),
            documents.Heading("Docking", 3, 1),
        ],
        title="Station handbook",
    )
    document = parse(content, None, "handbook.pdf", LIMITS)
    assert (document.content_type, document.pages, document.title) == (PDF, 3, "Station handbook")
    orbit = _having(document.segments, "408 km")
    assert (orbit.page, orbit.section) == (2, ("Operations",))
    assert _having(document.segments, "1998").page == 2
    docking = _having(document.segments, "port 3")
    assert (docking.page, docking.section) == (3, ("Operations", "Docking"))
    assert _having(document.segments, "Introduction").section == ("Overview",)


def test_docx_headings_build_sections_with_lists_and_table_rows() -> None:
    content = documents.word(
        [
            ("h1", "Operations"),
            ("p", "The station orbits at 408 km."),
            ("h2", "Docking"),
            ("li", "Check the seals."),
            ("li", "Open the hatch."),
            ("table", [["Port", "Use"], ["1", "crew"], ["3", "cargo"]]),
            ("h1", "Power"),
            ("p", "The arrays produce 120 kW."),
        ],
        title="Handbook",
    )
    document = parse(content, None, "handbook.docx", LIMITS)
    assert (document.content_type, document.pages, document.title) == (DOCX, None, "Handbook")
    heading = _having(document.segments, "Docking")
    assert (heading.kind, heading.section) == ("heading", ("Operations", "Docking"))
    assert _having(document.segments, "408 km").section == ("Operations",)
    seals = _having(document.segments, "seals")
    assert (seals.kind, seals.section) == ("list_item", ("Operations", "Docking"))
    table = _having(document.segments, "cargo")
    assert table.kind == "table" and table.text == "Port | Use\n1 | crew\n3 | cargo"
    power = _having(document.segments, "120 kW")
    assert (power.kind, power.section) == ("paragraph", ("Power",))


def test_html_keeps_main_content_and_drops_boilerplate() -> None:
    document = parse(documents.HTML_PAGE.encode(), "text/html; charset=utf-8", None, LIMITS)
    assert (document.content_type, document.title) == (HTML, "Station handbook")
    text = "\n".join(segment.text for segment in document.segments)
    for boilerplate in documents.HTML_BOILERPLATE:
        assert boilerplate not in text
    assert _having(document.segments, "408 km").section == ("Operations",)
    assert _having(document.segments, "408 km").text == "The station orbits at 408 km."
    port = _having(document.segments, "port 3")
    assert (port.kind, port.section) == ("paragraph", ("Operations", "Docking"))
    assert _having(document.segments, "seals").kind == "list_item"
    assert _having(document.segments, "crew").text == "Port | Use\n1 | crew"
    code = _having(document.segments, "power --status")
    assert (code.kind, code.text, code.section) == ("code", "power --status\n  ok", ("Operations", "Power"))


def test_html_without_main_uses_the_body() -> None:
    page = b"<html><body><div class='sidebar'>SIDE</div><div>Loose text here.<p>A paragraph.</p></div></body></html>"
    document = parse(page, None, "page.htm", LIMITS)
    assert [(s.kind, s.text) for s in document.segments] == [
        ("text", "Loose text here."),
        ("paragraph", "A paragraph."),
    ]


def test_markdown_structure() -> None:
    content = (
        b"# Operations\n\nThe station orbits at **408 km**.\n\n## Docking\n\n"
        b"- Check the [seals](http://x).\n- Open the hatch.\n  - Slowly.\n\n"
        b"| Port | Use |\n|---|---|\n| 3 | cargo |\n\n"
        b"```sh\npower --status\n  ok\n```\n\n# Power\n\nThe arrays produce 120 kW.\n"
    )
    document = parse(content, None, "notes.md", LIMITS)
    assert (document.content_type, document.title) == (MARKDOWN, "Operations")
    assert _having(document.segments, "408 km").text == "The station orbits at 408 km."
    assert _having(document.segments, "seals") == Segment(
        "Check the seals.", "list_item", None, ("Operations", "Docking")
    )
    assert _having(document.segments, "Slowly").kind == "list_item"
    assert _having(document.segments, "cargo").text == "Port | Use\n3 | cargo"
    assert _having(document.segments, "power").kind == "code"
    assert _having(document.segments, "120 kW").section == ("Power",)


def test_plain_text_paragraphs_and_legacy_encoding() -> None:
    document = parse("First paragraph\nstill first.\n\n\nSecond – café.".encode("cp1252"), None, "a.txt", LIMITS)
    assert document.content_type == PLAIN
    assert [s.text for s in document.segments] == ["First paragraph\nstill first.", "Second – café."]


def test_csv_and_xlsx_rows_in_header_led_blocks() -> None:
    rows = [["name", "orbit"], *[[f"sat{i}", str(400 + i)] for i in range(12)]]
    csv_document = parse("\n".join(";".join(row) for row in rows).encode(), None, "sats.csv", LIMITS)
    assert csv_document.content_type == CSV
    assert [s.text.splitlines()[0] for s in csv_document.segments] == ["name | orbit", "name | orbit"]
    assert csv_document.segments[1].text == "name | orbit\nsat10 | 410\nsat11 | 411"
    book = parse(documents.workbook({"Orbits": [list(r) for r in rows[:3]]}), None, "sats.xlsx", LIMITS)
    assert book.content_type == XLSX
    assert book.segments == [Segment("name | orbit\nsat0 | 400\nsat1 | 401", "table", None, ("Orbits",))]


def test_type_comes_from_content_when_nothing_is_declared() -> None:
    content = documents.pdf([["Only page."]])
    assert parse(content, None, None, LIMITS).content_type == PDF
    assert parse(content, "application/octet-stream", None, LIMITS).content_type == PDF
    assert parse(documents.HTML_PAGE.encode(), None, None, LIMITS).content_type == HTML
    assert parse(b"just words", None, "README", LIMITS).content_type == PLAIN


def test_html_article_header_is_content_but_the_page_header_is_not() -> None:
    page = (
        b"<html><body><header>Site name</header><article><header><h1>Launch notes</h1></header>"
        b"<p>Liftoff at 09:14.<br>Orbit reached.</p><footer>Filed under news</footer></article></body></html>"
    )
    document = parse(page, None, "news.html", LIMITS)
    assert [(s.kind, s.text, s.section) for s in document.segments] == [
        ("heading", "Launch notes", ("Launch notes",)),
        ("paragraph", "Liftoff at 09:14. Orbit reached.", ("Launch notes",)),
        ("text", "Filed under news", ("Launch notes",)),
    ]
