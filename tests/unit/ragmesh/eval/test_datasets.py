"""Data-set loaders: both formats read, and every malformed file named with its line."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragmesh.eval import shipped
from ragmesh.eval.datasets import DatasetError, load

CORPUS = '{"_id": "d1", "title": "T", "text": "one"}\n{"_id": "d2", "text": "two"}\n'


def _beir(root: Path, queries: str, qrels: str, corpus: str = CORPUS, nested: bool = True) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text(corpus)
    (root / "queries.jsonl").write_text(queries)
    qrels_path = root / "qrels" / "test.tsv" if nested else root / "qrels.tsv"
    qrels_path.parent.mkdir(exist_ok=True)
    qrels_path.write_text(qrels)
    return root


def test_beir_folder_with_graded_judgements_and_answers(tmp_path: Path) -> None:
    queries = '{"_id": "q1", "text": "first?", "answers": ["one"]}\n\n{"_id": "q2", "text": "second?"}\n'
    qrels = "query-id\tcorpus-id\tscore\nq1\td1\t2\nq1\td2\t0\nq2\td2\t1\n"
    loaded = load(_beir(tmp_path / "set", queries, qrels, nested=False))
    assert loaded.qrels == {"q1": {"d1": 2, "d2": 0}, "q2": {"d2": 1}}
    assert loaded.answers == {"q1": ["one"]}
    assert [d.text for d in loaded.corpus] == ["T\n\none", "two"]
    assert loaded.judged_queries() == ["q1", "q2"]


def test_simple_jsonl_with_separate_corpus(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text('{"id": "d1", "text": "one"}\n{"id": "d2", "text": "two"}\n')
    (tmp_path / "set.jsonl").write_text('{"query": "which?", "relevant": ["d2"], "answer": "two"}\n')
    loaded = load(tmp_path / "set.jsonl", tmp_path / "corpus.jsonl")
    assert (
        loaded.queries == {"q1": "which?"} and loaded.qrels == {"q1": {"d2": 1}} and loaded.answers == {"q1": ["two"]}
    )


@pytest.mark.parametrize(
    "case",
    [
        (
            '{"_id": "q1", "text": "x"}\n{"_id": "q2", "text": \n',
            "q1\td1\t1\n",
            CORPUS,
            "queries.jsonl:2",
            "invalid JSON",
        ),
        ('{"_id": "q1", "text": ""}\n', "q1\td1\t1\n", CORPUS, "queries.jsonl:1", "'text' must be"),
        (
            '{"_id": "q1", "text": "x"}\n',
            "query-id\tcorpus-id\tscore\nq1\td1\n",
            CORPUS,
            "test.tsv:2",
            "3 tab-separated",
        ),
        ('{"_id": "q1", "text": "x"}\n', "q1\td1\thigh\n", CORPUS, "test.tsv:1", "is not a number"),
        ('{"_id": "q1", "text": "x"}\n', "q1\td1\t1\nq9\td1\t1\n", CORPUS, "test.tsv:2", "'q9' is not in queries"),
        (
            '{"_id": "q1", "text": "x"}\n',
            "q1\td1\t1\n",
            '{"_id": "d1", "text": "a"}\n[1]\n',
            "corpus.jsonl:2",
            "JSON object",
        ),
        (
            '{"_id": "q1", "text": "x"}\n',
            "q1\td1\t1\n",
            CORPUS + '{"_id": "d1", "text": "b"}\n',
            "corpus.jsonl:3",
            "duplicate",
        ),
    ],
)
def test_malformed_beir_files_name_file_and_line(tmp_path: Path, case: tuple[str, str, str, str, str]) -> None:
    queries, qrels, corpus, where, reason = case
    with pytest.raises(DatasetError, match=reason) as caught:
        load(_beir(tmp_path / "set", queries, qrels, corpus))
    assert where in str(caught.value)


def test_malformed_jsonl_lines_are_named(tmp_path: Path) -> None:
    (tmp_path / "corpus.jsonl").write_text('{"id": "d1", "text": "one"}\n')
    data = tmp_path / "set.jsonl"
    data.write_text('{"query": "a", "relevant": ["d1"]}\n{"query": "b", "relevant": []}\n')
    with pytest.raises(DatasetError, match=r"set\.jsonl:2: 'relevant' must be"):
        load(data, tmp_path / "corpus.jsonl")
    data.write_text('{"query": "a", "relevant": ["d1", "nope"]}\n')
    with pytest.raises(DatasetError, match=r"set\.jsonl:1: 'relevant' names documents not in"):
        load(data, tmp_path / "corpus.jsonl")
    with pytest.raises(DatasetError, match="needs its corpus file"):
        load(data)


def test_judgements_of_missing_documents_are_dropped_with_a_warning(tmp_path: Path) -> None:
    loaded = load(_beir(tmp_path / "set", '{"_id": "q1", "text": "x"}\n', "q1\td1\t1\nq1\tgone\t1\n"))
    assert loaded.qrels == {"q1": {"d1": 1}} and "1 judgement(s)" in loaded.warnings[0]


def test_the_shipped_set_is_what_the_builder_makes_and_loads() -> None:
    for name, content in shipped.build().items():
        assert (shipped.OUT / name).read_text(encoding="utf-8") == content, (
            f"rebuild {name}: python -m ragmesh.eval.shipped"
        )
    loaded = load(shipped.OUT)
    assert len(loaded.corpus) == 15 and len(loaded.judged_queries()) == 29
    assert all(loaded.answers[q] for q in loaded.queries)
