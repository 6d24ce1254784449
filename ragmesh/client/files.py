"""Reading documents to ingest from files: documents the server parses, text, JSON lines.

Each file is one document (id: the path relative to the folder given, or the file name
for a file given directly; metadata: its ``source`` path). PDF, DOCX, XLSX, HTML and CSV
files — and, with ``raw_text``, Markdown and text too — are sent as raw content with their
file name, and the server parses them; otherwise Markdown and text files are sent as text
(with a ``title``). Each line of a ``.jsonl`` file is a document ``{"id", "text",
"metadata"}`` — or a BEIR corpus line ``{"_id", "title", "text"}``, read as ``ragmesh eval``
reads it (:func:`record_document`), so the ids match the data set's judgements. Folders are
searched recursively, filtered by ``include``/``exclude`` globs (matched against the relative
path and the file name). Problems are reported, not raised, so one bad file does not stop the
rest.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragmesh.client.types import Document

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst"}
#: Sent as text even with raw_text (the server has no parser for them).
TEXT_ONLY_SUFFIXES = {".rst"}
JSONL_SUFFIXES = {".jsonl", ".ndjson"}
#: Files the server parses (sent as raw bytes with their file name).
PARSED_SUFFIXES = {".pdf", ".docx", ".xlsx", ".html", ".htm", ".xhtml", ".csv"}
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | JSONL_SUFFIXES | PARSED_SUFFIXES


@dataclass
class LoadReport:
    """Documents found and problems met while reading files."""

    documents: list[Document] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)  # (file or file:line, reason)


def load(
    paths: Iterable[Path], *, include: Sequence[str] = (), exclude: Sequence[str] = (), raw_text: bool = False
) -> LoadReport:
    """Every document in ``paths`` (files, or folders searched recursively)."""
    report = LoadReport()
    for path in paths:
        if path.is_dir():
            files = [
                file
                for file in sorted(path.rglob("*"))
                if file.is_file()
                and file.suffix.lower() in SUPPORTED_SUFFIXES
                and _selected(file.relative_to(path).as_posix(), include, exclude)
            ]
            if not files:
                report.problems.append((str(path), f"no supported files in this folder ({_suffixes()})"))
            for file in files:
                _load_file(file, file.relative_to(path).as_posix(), report, raw_text)
        elif path.is_file():
            _load_file(path, path.name, report, raw_text)
        else:
            report.problems.append((str(path), "no such file or folder"))
    return report


def _selected(relative: str, include: Sequence[str], exclude: Sequence[str]) -> bool:
    def matches(patterns: Sequence[str]) -> bool:
        name = relative.rsplit("/", 1)[-1]
        return any(fnmatch.fnmatch(relative, p) or fnmatch.fnmatch(name, p) for p in patterns)

    return (not include or matches(include)) and not matches(exclude)


def _suffixes() -> str:
    return ", ".join(sorted(SUPPORTED_SUFFIXES))


def _load_file(path: Path, document_id: str, report: LoadReport, raw_text: bool) -> None:
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        report.problems.append((str(path), f"unsupported file type {suffix or '(none)'}; use one of {_suffixes()}"))
        return
    if suffix in PARSED_SUFFIXES or (raw_text and suffix not in TEXT_ONLY_SUFFIXES | JSONL_SUFFIXES):
        try:
            content = path.read_bytes()
        except OSError as error:
            report.problems.append((str(path), f"cannot read: {error}"))
            return
        report.documents.append(Document(document_id, "", {"source": str(path)}, content=content, file_name=path.name))
        return
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        report.problems.append((str(path), f"cannot read: {error}"))
        return
    if suffix in JSONL_SUFFIXES:
        report.documents.extend(_jsonl_documents(path, text, report))
    else:
        report.documents.append(Document(document_id, text, {"source": str(path), "title": _title(path, text)}))


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
        if not isinstance(record, dict):
            report.problems.append((where, 'expected an object with a "text" string'))
            continue
        try:
            yield record_document(record, f"{path.name}:{number}")
        except ValueError as error:
            report.problems.append((where, str(error)))


def record_document(record: Mapping[str, Any], fallback_id: str = "") -> Document:
    """The document of one JSON line: its id from ``_id`` (BEIR) or ``id`` (else ``fallback_id``;
    none at all is an error), its ``text`` with a ``title`` (BEIR) as the first paragraph,
    its ``metadata`` object plus that title. ValueError saying which field is wrong."""
    key = "_id" if "_id" in record else "id"
    raw_id = record.get(key)
    if isinstance(raw_id, bool) or not isinstance(raw_id, str | int) or not str(raw_id).strip():
        if raw_id is not None or not fallback_id:
            raise ValueError(f'"{key}" must be a non-empty string or an integer')
        raw_id = fallback_id
    text, title = record.get("text"), record.get("title") or ""
    if not isinstance(text, str):  # a blank one is the server's to reject, with its reason
        raise ValueError('expected an object with a "text" string')
    if not isinstance(title, str):
        raise ValueError('"title" must be a string')
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ValueError('"metadata" must be an object')
    title = title.strip()
    if title:
        metadata = {**metadata, "title": title}
    return Document(str(raw_id), f"{title}\n\n{text}" if title else text, metadata)


def _title(path: Path, text: str) -> str:
    """The first Markdown heading, else the file name without its suffix."""
    for line in text.splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
    return path.stem
