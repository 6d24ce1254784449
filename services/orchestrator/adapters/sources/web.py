"""A web site as a source: pages crawled from a start URL, following links under an allowed
prefix (breadth first, within ``max_depth`` links and ``max_pages`` pages), robots.txt
honoured (the standard library's parser), every fetch a conditional GET with the validators
of the last crawl (``If-None-Match`` / ``If-Modified-Since``: an unchanged page answers 304
and is not downloaded), the main content extracted by trafilatura.

The crawl is the listing: a page that cannot be fetched (other than 404/410, which means it
is gone) fails the listing, so that a site that is down never empties its collection.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import urllib.robotparser
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import urldefrag, urljoin, urlsplit

import httpx
import lxml.html
import trafilatura
from lxml import etree

from services.orchestrator.core.sources.acl import selected
from services.orchestrator.core.sources.model import ListingFailed, ReadFailed, SourceDocument, SourceEntry, SourceSpec

AGENT = "ragmesh"
TIMEOUT = httpx.Timeout(10.0, read=30.0)
MAX_PAGE_BYTES = 16 * 1024 * 1024


class WebReader:
    """Crawls one site; keeps each page's validators and links between syncs."""

    def __init__(self, spec: SourceSpec, cache_dir: Path) -> None:
        self.spec = spec
        self.cache_file = cache_dir / f"{spec.name}.json"
        self.pages: dict[str, dict[str, Any]] = {}
        self.bodies: dict[str, bytes] = {}

    async def listing(self) -> list[SourceEntry]:
        self.pages = self._load_cache()
        self.bodies = {}
        async with httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=True, headers={"user-agent": AGENT}) as client:
            robots = await self._robots(client)
            found = await self._crawl(client, robots)
        self._save_cache(found)
        return [SourceEntry(url, page["token"], url) for url, page in sorted(found.items())]

    async def _robots(self, client: httpx.AsyncClient) -> urllib.robotparser.RobotFileParser:
        parts = urlsplit(self.spec.url)
        parser = urllib.robotparser.RobotFileParser()
        try:
            response = await client.get(f"{parts.scheme}://{parts.netloc}/robots.txt")
        except httpx.HTTPError as error:
            raise ListingFailed(f"robots.txt: {error}") from None
        if response.status_code >= 500:
            raise ListingFailed(f"robots.txt answered {response.status_code}")
        parser.parse(response.text.splitlines() if response.status_code == 200 else [])
        return parser

    async def _crawl(
        self, client: httpx.AsyncClient, robots: urllib.robotparser.RobotFileParser
    ) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        queue, seen, fetched = deque([(self.spec.url, 0)]), {self.spec.url}, 0
        while queue and fetched < self.spec.max_pages:
            url, depth = queue.popleft()
            if not robots.can_fetch(AGENT, url):
                continue
            fetched += 1
            page = await self._fetch(client, url, first=url == self.spec.url)
            if page is None:
                continue
            if selected(url, self.spec.include, self.spec.exclude):
                found[url] = page
            for link in page["links"] if depth < self.spec.max_depth else []:
                if link.startswith(self.spec.allow_prefix) and link not in seen:
                    seen.add(link)
                    queue.append((link, depth + 1))
        return found

    async def _fetch(self, client: httpx.AsyncClient, url: str, first: bool) -> dict[str, Any] | None:
        """The page's validators, token and links (None: gone, or not HTML)."""
        cached = self.pages.get(url, {})
        headers = {}
        if cached.get("etag"):
            headers["if-none-match"] = cached["etag"]
        if cached.get("last_modified"):
            headers["if-modified-since"] = cached["last_modified"]
        try:
            response = await client.get(url, headers=headers)
        except httpx.HTTPError as error:
            raise ListingFailed(f"{url}: {error}") from None
        if response.status_code == 304 and cached:
            return cached
        if response.status_code in (404, 410) and not first:
            return None
        if response.status_code != 200:
            raise ListingFailed(f"{url} answered {response.status_code}")
        if "html" not in response.headers.get("content-type", "html") or len(response.content) > MAX_PAGE_BYTES:
            return None
        self.bodies[url] = response.content
        etag, modified = response.headers.get("etag", ""), response.headers.get("last-modified", "")
        token = etag or modified or hashlib.sha256(response.content).hexdigest()
        return {"etag": etag, "last_modified": modified, "token": token, "links": _links(url, response.content)}

    def _load_cache(self) -> dict[str, dict[str, Any]]:
        with contextlib.suppress(OSError, ValueError):
            return dict(json.loads(self.cache_file.read_text()))
        return {}

    def _save_cache(self, pages: dict[str, dict[str, Any]]) -> None:
        with contextlib.suppress(OSError):
            self.cache_file.parent.mkdir(parents=True, exist_ok=True)
            temporary = self.cache_file.with_suffix(".tmp")
            temporary.write_text(json.dumps(pages))
            temporary.replace(self.cache_file)

    async def read(self, entry: SourceEntry) -> SourceDocument:
        body = self.bodies.get(entry.key)
        if body is None:  # unchanged at the crawl (304) but read all the same: fetch it whole
            try:
                async with httpx.AsyncClient(timeout=TIMEOUT, headers={"user-agent": AGENT}) as client:
                    response = await client.get(entry.key)
                    response.raise_for_status()
                    body = response.content
            except httpx.HTTPError as error:
                raise ReadFailed(str(error)) from None
        html = body.decode("utf-8", errors="replace")
        text = trafilatura.extract(html, url=entry.key, include_comments=False, include_tables=True)
        if not text:
            raise ReadFailed("no main content found in the page")
        metadata = trafilatura.extract_metadata(html, default_url=entry.key)
        title = metadata.title if metadata is not None and metadata.title else ""
        return SourceDocument(entry, text=text, title=title)


def _links(base: str, content: bytes) -> list[str]:
    """The absolute http(s) links of a page, without fragments, in order."""
    try:
        tree = lxml.html.fromstring(content)
    except (ValueError, etree.ParserError):
        return []
    links = []
    for href in tree.xpath("//a/@href"):
        url = urldefrag(urljoin(base, str(href))).url
        if url.startswith(("http://", "https://")) and url not in links:
            links.append(url)
    return links
