"""Evaluation data sets: a BEIR folder or a simple JSONL file with a separate corpus.

BEIR layout: ``corpus.jsonl`` (``{"_id", "title", "text"}``), ``queries.jsonl``
(``{"_id", "text"}``) and ``qrels/test.tsv`` or ``qrels.tsv`` (``query-id corpus-id score``,
tab-separated, with or without a header; graded or binary scores). Reference answers,
when present, are read from an ``answers`` list (or ``answer`` string) in queries.jsonl
(BEIR's ``metadata.answer`` too).

Simple JSONL: one ``{"query", "relevant": [ids], "answer"}`` per line (``id`` optional,
``relevant`` may also map ids to grades), with the corpus in a separate JSONL file of
``{"id" or "_id", "text", "title"}``.

Every malformed file raises DatasetError naming the file and the line.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragmesh.client import Document
from ragmesh.client.files import record_document


class DatasetError(ValueError):
    """A data-set file is missing or malformed; the message names the file (and line)."""

    def __init__(self, path: Path, reason: str, line: int | None = None) -> None:
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {reason}")
        self.path = path
        self.line = line


@dataclass
class EvalSet:
    """Documents to index, queries, graded judgements and optional reference answers."""

    name: str
    corpus: list[Document]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    answers: dict[str, list[str]] = field(default_factory=dict)
    #: What was tolerated while loading (e.g. judgements of documents missing from the corpus).
    warnings: list[str] = field(default_factory=list)

    def judged_queries(self) -> list[str]:
        """Ids of the queries that have at least one relevant document, in file order."""
        return [q for q in self.queries if any(grade > 0 for grade in self.qrels.get(q, {}).values())]


def load(dataset: Path, corpus: Path | None = None) -> EvalSet:
    """A BEIR folder, or a simple JSONL file with its corpus file."""
    if dataset.is_dir():
        if corpus is not None:
            raise DatasetError(dataset, "a BEIR folder holds its own corpus.jsonl; drop --corpus")
        return load_beir(dataset)
    if not dataset.is_file():
        raise DatasetError(dataset, "no such file or folder")
    if corpus is None:
        raise DatasetError(dataset, "a JSONL data set needs its corpus file (--corpus)")
    return load_jsonl(dataset, corpus)


def json_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) of each non-blank line of a JSONL file."""
    if not path.is_file():
        raise DatasetError(path, "file not found")
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise DatasetError(path, f"invalid JSON ({error.msg} at column {error.colno})", number) from None
            if not isinstance(record, dict):
                raise DatasetError(path, f"expected a JSON object, got {type(record).__name__}", number)
            yield number, record


def _text(record: dict[str, Any], key: str, path: Path, line: int, *, required: bool = True) -> str:
    value = record.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str | int) or (required and not str(value).strip()):
        raise DatasetError(path, f"{key!r} must be a non-empty string", line)
    return str(value)


def read_corpus(path: Path) -> list[Document]:
    """Documents of a corpus JSONL (``_id`` or ``id``, ``text``, optional ``title`` and
    ``metadata``), read by the rule ``ragmesh ingest`` uses for JSONL files."""
    documents: list[Document] = []
    seen: set[str] = set()
    for line, record in json_lines(path):
        try:
            document = record_document(record)
        except ValueError as error:
            raise DatasetError(path, str(error), line) from None
        if not str(record.get("text")).strip():
            raise DatasetError(path, "'text' must be a non-empty string", line)
        if document.id in seen:
            raise DatasetError(path, f"duplicate document id {document.id!r}", line)
        seen.add(document.id)
        documents.append(document)
    if not documents:
        raise DatasetError(path, "the corpus holds no document")
    return documents


def _answers(record: dict[str, Any], path: Path, line: int) -> list[str]:
    metadata = record.get("metadata") if isinstance(record.get("metadata"), dict) else {}
    value = record.get("answers", record.get("answer", metadata.get("answer") if metadata else None))
    if value is None or value == "":
        return []
    values = value if isinstance(value, list) else [value]
    if not all(isinstance(v, str) and v.strip() for v in values):
        raise DatasetError(path, "'answer' must be a non-empty string or a list of them", line)
    return [str(v) for v in values]


def read_qrels(
    path: Path, known_queries: set[str], known_documents: set[str], warnings: list[str]
) -> dict[str, dict[str, int]]:
    """Judgements of a BEIR qrels TSV: query id, document id, integer grade. Judgements of
    documents missing from the corpus are dropped with a warning (some public sets have a
    few); an unknown query id is an error."""
    qrels: dict[str, dict[str, int]] = {}
    dropped = 0
    with path.open(encoding="utf-8", newline="") as handle:
        for line, row in enumerate(csv.reader(handle, delimiter="\t"), start=1):
            if not row or not "".join(row).strip():
                continue
            if line == 1 and row[0].strip().lower() in ("query-id", "query_id", "qid"):
                continue  # header
            cells = [row[0], row[2], row[3]] if len(row) == 4 else row  # 4 columns: TREC's qid iter docid grade
            if len(cells) != 3:
                raise DatasetError(path, f"expected 3 tab-separated columns, got {len(row)}", line)
            query_id, document_id, grade = (cell.strip() for cell in cells)
            try:
                value = int(float(grade))
            except ValueError:
                raise DatasetError(path, f"score {grade!r} is not a number", line) from None
            if query_id not in known_queries:
                raise DatasetError(path, f"query id {query_id!r} is not in queries.jsonl", line)
            if document_id not in known_documents:
                dropped += 1
                continue
            qrels.setdefault(query_id, {})[document_id] = value
    if dropped:
        warnings.append(f"{path}: {dropped} judgement(s) of documents missing from the corpus were dropped")
    return qrels


def load_beir(folder: Path) -> EvalSet:
    """A BEIR folder: corpus.jsonl, queries.jsonl and qrels/test.tsv (or qrels.tsv)."""
    documents = read_corpus(folder / "corpus.jsonl")
    queries: dict[str, str] = {}
    answers: dict[str, list[str]] = {}
    query_path = folder / "queries.jsonl"
    for line, record in json_lines(query_path):
        query_id = _text(record, "_id", query_path, line)
        queries[query_id] = _text(record, "text", query_path, line)
        if found := _answers(record, query_path, line):
            answers[query_id] = found
    candidates = [folder / "qrels" / "test.tsv", folder / "qrels.tsv"]
    qrels_path = next((p for p in candidates if p.is_file()), None)
    if qrels_path is None:
        raise DatasetError(folder, "no qrels/test.tsv or qrels.tsv")
    warnings: list[str] = []
    qrels = read_qrels(qrels_path, set(queries), {d.id for d in documents}, warnings)
    return EvalSet(folder.resolve().name, documents, queries, qrels, answers, warnings)


def load_jsonl(path: Path, corpus: Path) -> EvalSet:
    """A JSONL of ``{"query", "relevant", "answer"}`` lines and its corpus file."""
    documents = read_corpus(corpus)
    known = {d.id for d in documents}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    answers: dict[str, list[str]] = {}
    for line, record in json_lines(path):
        query_id = _text(record, "id", path, line) if "id" in record else f"q{line}"
        if query_id in queries:
            raise DatasetError(path, f"duplicate query id {query_id!r}", line)
        queries[query_id] = _text(record, "query", path, line)
        qrels[query_id] = _relevant(record.get("relevant"), path, line)
        if missing := sorted(set(qrels[query_id]) - known):
            raise DatasetError(path, f"'relevant' names documents not in {corpus}: {missing[:5]}", line)
        if found := _answers(record, path, line):
            answers[query_id] = found
    if not queries:
        raise DatasetError(path, "the data set holds no query")
    return EvalSet(path.stem, documents, queries, qrels, answers)


def _relevant(value: object, path: Path, line: int) -> dict[str, int]:
    if isinstance(value, list) and value and all(isinstance(v, str | int) for v in value):
        return {str(v): 1 for v in value}
    if isinstance(value, dict) and value and all(isinstance(g, int) for g in value.values()):
        return {str(k): int(g) for k, g in value.items()}
    raise DatasetError(path, "'relevant' must be a non-empty list of document ids (or a map id -> grade)", line)
