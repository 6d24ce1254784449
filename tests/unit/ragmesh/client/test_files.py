"""JSON lines read for ``ragmesh ingest``: a BEIR corpus (``_id``, ``title``) gives the documents
``ragmesh eval`` indexes — same ids, same texts — so chunking experiments filled by ``ragmesh
ingest --experiment`` match the data set's judgements."""

from __future__ import annotations

import json
from pathlib import Path

from ragmesh.client import files
from ragmesh.eval import shipped
from ragmesh.eval.datasets import load, read_corpus


def _write(path: Path, *records: object) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path


def test_a_beir_corpus_is_read_as_the_evaluation_reads_it(tmp_path: Path) -> None:
    corpus = _write(
        tmp_path / "corpus.jsonl",
        {"_id": "d1", "title": "Envoy", "text": "Envoy balances calls.", "metadata": {"url": "u"}},
        {"_id": 7, "title": "", "text": "No title here."},
    )
    loaded = files.load([corpus])
    assert loaded.problems == []
    ingested = [(d.id, d.text, d.metadata) for d in loaded.documents]
    assert ingested == [
        ("d1", "Envoy\n\nEnvoy balances calls.", {"url": "u", "title": "Envoy"}),
        ("7", "No title here.", {}),
    ]
    assert ingested == [(d.id, d.text, d.metadata) for d in read_corpus(corpus)]


def test_the_shipped_set_ingests_with_the_ids_its_judgements_use() -> None:
    evalset = load(shipped.OUT)
    ingested = files.load([shipped.OUT / "corpus.jsonl"]).documents
    judged = {document for grades in evalset.qrels.values() for document in grades}
    assert judged <= {d.id for d in ingested}
    assert [(d.id, d.text) for d in ingested] == [(d.id, d.text) for d in evalset.corpus]


def test_plain_lines_keep_their_ids_and_bad_lines_are_reported(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "docs.jsonl",
        {"id": "faq-1", "text": "Refunds take 5 days.", "metadata": {"lang": "en"}},
        {"text": "No id."},
        {"_id": "", "text": "Empty id."},
        {"id": "x", "text": "Bad metadata.", "metadata": [1]},
        {"id": "blank", "text": " "},  # sent: the server rejects it with its reason
    )
    loaded = files.load([path])
    ids = [(d.id, d.metadata) for d in loaded.documents]
    assert ids == [("faq-1", {"lang": "en"}), ("docs.jsonl:2", {}), ("blank", {})]
    assert [where for where, _ in loaded.problems] == [f"{path}:3", f"{path}:4"]
    assert '"_id" must be a non-empty string' in loaded.problems[0][1]
