"""Reading documents to ingest from files: plain text, Markdown and JSON lines.

Text and Markdown files become one document each (id: the path relative to the folder
given, metadata: source path and title); each line of a ``.jsonl`` file is a document
``{"id": ..., "text": ..., "metadata": {...}}``. Problems are reported, not raised, so
one bad file does not stop the rest.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ragmesh.client.types import Document

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}


@dataclass
class LoadReport:
    """Documents found and problems met while reading files."""

    documents: list[Document] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file or file:line, reason)


def load(paths: Iterable[Path]) -> LoadReport:
    """Every document in ``paths`` (files, or folders searched recursively)."""
    report = LoadReport()
    for path in paths:
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.suffix.lower() in TEXT_SUFFIXES | JSONL_SUFFIXES)
            if not files:
                report.problems.append((str(path), "no .txt, .md or .jsonl files in this folder"))
            for file in files:
                _load_file(file, file.relative_to(path).as_posix(), report)
        elif path.is_file():
            _load_file(path, path.name, report)
        else:
            report.problems.append((str(path), "no such file or folder"))
    return report


def _load_file(path: Path, document_id: str, report: LoadReport) -> None:
    suffix = path.suffix.lower()
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        report.problems.append((str(path), f"cannot read: {error}"))
        return
    if suffix in JSONL_SUFFIXES:
        report.documents.extend(_jsonl_documents(path, text, report))
    elif suffix in TEXT_SUFFIXES:
        report.documents.append(Document(document_id, text, {"source": str(path), "title": _title(path, text)}))
    else:
        report.problems.append((str(path), f"unsupported file type {suffix or '(none)'}; use .txt, .md or .jsonl"))


def _jsonl_documents(path: Path, text: str, report: LoadReport) -> Iterator[Document]:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            report.problems.append((where, f"not JSON: {error.msg}"))
            continue
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            report.problems.append((where, 'expected an object with a "text" string'))
            continue
        metadata = record.get("metadata") or {}
        if not isinstance(metadata, dict):
            report.problems.append((where, '"metadata" must be an object'))
            continue
        yield Document(str(record.get("id") or f"{path.name}:{number}"), record["text"], metadata)


def _title(path: Path, text: str) -> str:
    """The first Markdown heading, else the file name without its suffix."""
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return path.stem
