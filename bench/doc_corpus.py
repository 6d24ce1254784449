"""A generated mixed document corpus with known facts, and a parse-only timing over it.

``--out DIR`` writes ``--files`` documents (PDF, DOCX, HTML, Markdown in turn; 3 pages or
3 sections each, filler text around one fact per document) and ``facts.jsonl``: per
document the file, the fact, a question whose answer is in it, and the page / section the
fact is on. ``--parse`` then parses every file in-process and (with ``--pool N``) through
a :class:`services.parsing.ParserPool` of N worker processes, checks each fact's page and
section, and prints documents/s, pages/s and ms per document by format.

Usage: ``python -m bench.doc_corpus --out /tmp/corpus --parse [--files 300] [--pool 2]``;
the last line printed is one JSON object. ``make bench-ingest-docs`` builds on it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from services.parsing import ParsedDocument, ParseLimits, ParserPool, parse
from tests.support import documents

FORMATS = ("pdf", "docx", "html", "md")
SECTIONS = ("Overview", "Operations", "Maintenance")
_WORDS = [
    *("station", "module", "crew", "orbit", "power", "array", "thermal", "loop", "pressure", "valve", "hatch"),
    *("cargo", "supply", "schedule", "inspection", "sensor", "radiator", "battery", "antenna", "signal"),
    *("procedure", "checklist", "airlock", "filter", "pump"),
]


@dataclass(frozen=True)
class Fact:
    """The one fact of a generated document and where it is."""

    file: str
    fact: str
    question: str
    answer: str
    page: int | None
    section: list[str]


def _filler(rng: random.Random, sentences: int) -> list[str]:
    return [" ".join(rng.choice(_WORDS) for _ in range(12)).capitalize() + "." for _ in range(sentences)]


def generate(out: Path, files: int, seed: int = 7) -> list[Fact]:
    """Write ``files`` documents and facts.jsonl into ``out``; the facts in order."""
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    facts: list[Fact] = []
    for index in range(files):
        kind = FORMATS[index % len(FORMATS)]
        unit, code = f"unit {index:04d}", f"{rng.randrange(10**6):06d}"
        fact = f"The access code of {unit} is {code}."
        where = index % 3  # page / section of the fact
        parts = [_filler(rng, 6) for _ in SECTIONS]
        parts[where].insert(3, fact)
        name = f"doc{index:04d}.{kind}"
        (out / name).write_bytes(_render(kind, f"Handbook {index}", parts))
        page = where + 1 if kind == "pdf" else None
        section = [SECTIONS[where]] if kind == "pdf" else [f"Handbook {index}", SECTIONS[where]]
        facts.append(Fact(name, fact, f"What is the access code of {unit}?", code, page, section))
    with (out / "facts.jsonl").open("w") as stream:
        for item in facts:
            stream.write(json.dumps(item.__dict__) + "\n")
    return facts


def _render(kind: str, title: str, parts: list[list[str]]) -> bytes:
    """One document: a page per section (PDF, with an outline) or a title and H2 sections."""
    if kind == "pdf":
        outline = [documents.Heading(name, page) for page, name in enumerate(SECTIONS, start=1)]
        return documents.pdf(parts, outline=outline, title=title)
    if kind == "docx":
        blocks: list[tuple[str, object]] = [("h1", title)]
        for name, paragraphs in zip(SECTIONS, parts, strict=True):
            blocks += [("h2", name), *(("p", p) for p in paragraphs)]
        return documents.word(blocks, title=title)
    if kind == "html":
        body = "".join(
            f"<h2>{name}</h2>" + "".join(f"<p>{p}</p>" for p in paragraphs)
            for name, paragraphs in zip(SECTIONS, parts, strict=True)
        )
        nav = "<nav><a href='/'>Home</a> <a href='/docs'>Docs</a></nav><footer>© 2026 Example</footer>"
        head = f"<!DOCTYPE html><html><head><title>{title}</title></head>"
        return f"{head}<body>{nav}<main><h1>{title}</h1>{body}</main></body></html>".encode()
    text = f"# {title}\n\n" + "".join(
        f"## {name}\n\n" + "\n\n".join(paragraphs) + "\n\n" for name, paragraphs in zip(SECTIONS, parts, strict=True)
    )
    return text.encode()


def _check(document: ParsedDocument, fact: Fact) -> bool:
    """Whether the fact is in exactly one segment, on its page and in its section."""
    found = [s for s in document.segments if fact.fact in s.text]
    return len(found) == 1 and found[0].page == fact.page and list(found[0].section) == fact.section


def time_in_process(out: Path, facts: list[Fact], limits: ParseLimits) -> dict[str, object]:
    """Parse every file in this process: totals and ms per document by format."""
    per_format: dict[str, list[float]] = defaultdict(list)
    pages = wrong = 0
    started = time.perf_counter()
    for fact in facts:
        content = (out / fact.file).read_bytes()
        begin = time.perf_counter()
        document = parse(content, None, fact.file, limits)
        per_format[fact.file.rsplit(".", 1)[1]].append(time.perf_counter() - begin)
        pages += document.pages or 0
        wrong += not _check(document, fact)
    elapsed = time.perf_counter() - started
    return {
        "documents_per_s": round(len(facts) / elapsed, 1),
        "pdf_pages_per_s": round(pages / sum(per_format["pdf"]), 1) if per_format["pdf"] else None,
        "ms_per_document": {kind: round(1000 * sum(t) / len(t), 2) for kind, t in per_format.items()},
        "facts_misplaced": wrong,
    }


async def time_pool(out: Path, facts: list[Fact], limits: ParseLimits, workers: int) -> dict[str, object]:
    """Parse every file through a ParserPool, all submitted at once (the pool bounds concurrency)."""
    pool = ParserPool(workers, limits)
    try:
        await pool.start()
        contents = [(out / fact.file).read_bytes() for fact in facts]
        started = time.perf_counter()
        parsed = await asyncio.gather(*(pool.parse(c, None, f.file) for c, f in zip(contents, facts, strict=True)))
        elapsed = time.perf_counter() - started
    finally:
        await pool.close()
    wrong = sum(not _check(document, fact) for document, fact in zip(parsed, facts, strict=True))
    return {"workers": workers, "documents_per_s": round(len(facts) / elapsed, 1), "facts_misplaced": wrong}


def main() -> None:
    """Generate the corpus, optionally time parsing; print the figures (last line JSON)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True, help="folder for the corpus (created)")
    parser.add_argument("--files", type=int, default=300, help="documents to generate (default 300)")
    parser.add_argument("--parse", action="store_true", help="time parsing of the corpus")
    parser.add_argument("--pool", type=int, default=0, help="also parse through a ParserPool of N workers")
    args = parser.parse_args()
    started = time.perf_counter()
    facts = generate(args.out, args.files)
    result: dict[str, object] = {
        "benchmark": "doc_corpus",
        "files": len(facts),
        "generate_s": round(time.perf_counter() - started, 1),
    }
    print(f"wrote {len(facts)} documents and facts.jsonl to {args.out} in {result['generate_s']} s")
    if args.parse:
        limits = ParseLimits()
        result["in_process"] = time_in_process(args.out, facts, limits)
        print("in-process parse:", result["in_process"])
        if args.pool:
            result["pool"] = asyncio.run(time_pool(args.out, facts, limits, args.pool))
            print("parser pool:", result["pool"])
    print(json.dumps(result))


if __name__ == "__main__":
    main()
