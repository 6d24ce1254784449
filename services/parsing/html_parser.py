"""HTML: the main content only, with beautifulsoup4 on lxml and explicit boilerplate rules.

Navigation, page header and footer, asides, forms, scripts, styles and cookie or consent
banners are removed before any text is read; the content root is ``<main>`` (or
``role=main``), else a single ``<article>``, else ``<body>``. Headings h1-h6 build the
section path. Explicit rules rather than a trained extractor: they are predictable, fast
and testable (trafilatura was not available here; see docs/documents.md).
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, NavigableString, Tag
from bs4.element import Comment

from services.parsing.common import HeadingPath, SegmentSink, decode_text
from services.parsing.model import HTML, ParsedDocument, ParseLimits

_DROP_TAGS = (
    "script", "style", "noscript", "template", "nav", "aside", "form", "iframe", "svg",
    "button", "select", "input", "textarea", "dialog", "canvas", "object", "embed",
)  # fmt: skip
_DROP_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "dialog", "alertdialog"}
# Words in an id or class that mark boilerplate (matched as whole words of the name).
_BOILERPLATE = re.compile(
    r"(^|[-_ ])(cookies?|consent|gdpr|breadcrumbs?|sidebar|navbar|nav|menu|social|share|sharing|"
    r"advert|ads|popup|modal|newsletter|skip-link|site-header|site-footer)($|[-_ ])",
    re.IGNORECASE,
)
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
_PARAGRAPHS = ("p", "blockquote", "dt", "dd", "figcaption", "address", "summary")
_INLINE = ("span", "a", "b", "i", "em", "strong", "code", "small", "sub", "sup", "mark", "abbr", "u", "s", "q", "time")


def parse_html(content: bytes, limits: ParseLimits) -> ParsedDocument:
    """Segments of the page's main content."""
    soup = BeautifulSoup(decode_text(content), "lxml")
    title_tag = soup.find("title")
    title = title_tag.get_text(" ", strip=True) or None if title_tag else None
    _strip_boilerplate(soup)
    root = _content_root(soup)
    walker = _Walker(SegmentSink(limits), in_article=root.name in ("main", "article"))
    walker.walk(root)
    walker.flush()
    if title is None:
        title = next((s.text for s in walker.sink.segments if s.kind == "heading"), None)
    return ParsedDocument(HTML, walker.sink.segments, pages=None, title=title)


def _strip_boilerplate(soup: BeautifulSoup) -> None:
    """Remove what is boilerplate by its tag alone; the walker skips the rest (by role, id, class)."""
    for comment in soup.find_all(string=lambda text: isinstance(text, Comment)):
        comment.extract()
    for tag in soup.find_all(_DROP_TAGS):
        tag.decompose()
    for tag in soup.find_all("br"):
        tag.replace_with("\n")


def _is_boilerplate(tag: Tag, in_article: bool) -> bool:
    """Whether ``tag`` is page furniture: the page's header/footer, a hidden element, a banner, a menu."""
    if tag.name in ("header", "footer"):
        return not in_article  # an article's own header holds its title
    if tag.name in ("html", "body", "main", "article"):
        return False
    if str(tag.get("role", "")).lower() in _DROP_ROLES:
        return True
    if tag.has_attr("hidden") or str(tag.get("aria-hidden", "")).lower() == "true":
        return True
    classes = tag.get("class")
    names = [str(tag.get("id", "")), *(map(str, classes) if isinstance(classes, list) else [str(classes or "")])]
    return any(_BOILERPLATE.search(name) for name in names if name)


def _content_root(soup: BeautifulSoup) -> Tag:
    main = soup.find("main") or soup.find(True, attrs={"role": "main"})
    if isinstance(main, Tag):
        return main
    articles = soup.find_all("article")
    if len(articles) == 1:
        return articles[0]
    body = soup.find("body")
    return body if isinstance(body, Tag) else soup


class _Walker:
    """Emits segments for block elements in document order; loose text becomes "text"."""

    def __init__(self, sink: SegmentSink, in_article: bool) -> None:
        self.sink = sink
        self.in_article = in_article
        self.headings = HeadingPath()
        self._loose: list[str] = []

    def flush(self) -> None:
        if self._loose:
            self.sink.add(_words("".join(self._loose)), "text", self.headings.path)
            self._loose = []

    def walk(self, node: Tag) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                self._loose.append(str(child))
            elif isinstance(child, Tag):
                self._element(child)

    def _element(self, tag: Tag) -> None:
        name = tag.name
        if _is_boilerplate(tag, self.in_article):
            return
        if name in _HEADINGS or name in _PARAGRAPHS or name in ("li", "pre", "table"):
            self.flush()
        if name in _HEADINGS:
            text = _words(tag.get_text())
            if text:
                self.sink.add(text, "heading", self.headings.enter(_HEADINGS[name], text))
        elif name in _PARAGRAPHS:
            self.sink.add(_words(tag.get_text()), "paragraph", self.headings.path)
        elif name == "li":
            self._list_item(tag)
        elif name == "pre":
            self.sink.add(tag.get_text(), "code", self.headings.path)
        elif name == "table":
            self.sink.add("\n".join(_rows(tag)), "table", self.headings.path)
        elif name in _INLINE:
            self._loose.append(tag.get_text())
        else:
            self._container(tag)

    def _container(self, tag: Tag) -> None:
        """A block that holds others (div, section, article, ul): its children in order."""
        self.flush()
        outer = self.in_article
        self.in_article = outer or tag.name in ("main", "article")
        self.walk(tag)
        self.in_article = outer
        self.flush()

    def _list_item(self, item: Tag) -> None:
        nested = [child for child in item.find_all(["ul", "ol"], recursive=False)]
        for child in nested:
            child.extract()
        self.sink.add(_words(item.get_text()), "list_item", self.headings.path)
        for child in nested:
            self.walk(child)


def _words(text: str) -> str:
    """HTML text with its whitespace runs (newlines included) collapsed, as a browser shows it."""
    return " ".join(text.split())


def _rows(table: Tag) -> list[str]:
    rows: list[str] = []
    for row in table.find_all("tr"):
        cells = [_words(cell.get_text()) for cell in row.find_all(["td", "th"])]
        if any(cells):
            rows.append(" | ".join(cells))
    return rows
