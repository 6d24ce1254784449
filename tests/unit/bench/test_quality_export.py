"""``python -m bench.quality --export DIR``: the XQuAD set as a BEIR folder that ``ragmesh eval``
loads back unchanged (built here from a two-paragraph SQuAD-shaped file)."""

from __future__ import annotations

import json
from pathlib import Path

from bench.quality import export, xquad_en
from ragmesh.eval.datasets import load


def test_the_exported_folder_loads_as_the_same_set(tmp_path: Path) -> None:
    squad = tmp_path / "squad.json"
    paragraphs = [
        {"context": "Envoy balances calls.", "qas": [{"id": "a", "question": "What balances calls?"}]},
        {"context": "Redis keeps the cache.", "qas": [{"id": "b", "question": "What keeps the cache?"},
                                                      {"id": "c", "question": "Not in XQuAD?"}]},
    ]  # fmt: skip
    squad.write_text(json.dumps({"data": [{"title": "Mesh", "paragraphs": paragraphs}]}))
    evalset = xquad_en(squad, {"a", "b"})
    export(evalset, tmp_path / "xquad")
    loaded = load(tmp_path / "xquad")
    assert [(d.id, d.text) for d in loaded.corpus] == [(d.id, d.text) for d in evalset.corpus]
    assert loaded.queries == evalset.queries == {"a": "What balances calls?", "b": "What keeps the cache?"}
    assert loaded.qrels == evalset.qrels == {"a": {"Mesh_0": 1}, "b": {"Mesh_1": 1}}
