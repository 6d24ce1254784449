"""SQuAD-style answer scores: normalisation, exact match, token F1, containment."""

from __future__ import annotations

import pytest

from ragmesh.eval.answers import answer_scores, normalize


def test_normalisation_drops_case_punctuation_and_articles() -> None:
    assert normalize("  The  Default model, is: an MiniLM! ") == "default model is minilm"


def test_scores_take_the_best_reference() -> None:
    scores = answer_scores("It is the all-MiniLM model.", ["SmolLM2", "all-MiniLM model"])
    assert scores["exact_match"] == 0.0 and scores["containment"] == 1.0
    # "it is allminilm model" vs "allminilm model": 2 common tokens, precision 2/4, recall 2/2.
    assert scores["token_f1"] == pytest.approx(2 * 0.5 * 1.0 / 1.5)
    assert answer_scores("the 8080", ["8080"]) == {"exact_match": 1.0, "token_f1": 1.0, "containment": 1.0}
    assert answer_scores("port 80801", ["8080"])["containment"] == 0.0  # word-aligned, not a substring
    assert answer_scores("anything", [])["token_f1"] == 0.0
