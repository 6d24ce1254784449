"""Attribution of answer sentences to sources, markers, the streaming form and the
faithfulness scores built on them."""

from __future__ import annotations

import pytest

from ragmesh.eval.faithfulness import citation_scores
from ragmesh.vocabulary.citations import (
    StreamingAttributor,
    attribute,
    cited_numbers,
    sentences,
    with_markers,
)

SOURCES = [
    "The embedder's default model is all-MiniLM-L6-v2, producing vectors of 384 dimensions.",
    "Envoy listens for clients on port 8080 and balances requests with least-request load balancing.",
]
ANSWER = "Envoy listens on port 8080. The default model is all-MiniLM-L6-v2! I like turtles."


def test_sentences_keep_their_offsets() -> None:
    found = sentences(ANSWER)
    assert [s.text for s in found] == [
        "Envoy listens on port 8080.",
        "The default model is all-MiniLM-L6-v2!",
        "I like turtles.",
    ]
    assert all(ANSWER[s.start : s.end] == s.text for s in found)


def test_each_sentence_goes_to_the_source_it_overlaps_most_above_the_threshold() -> None:
    found = attribute(ANSWER, SOURCES, threshold=0.5)
    assert [(a.sentence.text[:5], a.number) for a in found] == [("Envoy", 2), ("The d", 1)]
    assert all(0.5 <= a.score <= 1.0 for a in found)
    assert attribute(ANSWER, SOURCES, threshold=1.0)[0].number == 2  # every content word of sentence 1 is in source 2
    assert attribute("Nothing here matches.", SOURCES) == []
    with pytest.raises(ValueError, match="threshold"):
        attribute(ANSWER, SOURCES, threshold=0.0)


def test_markers_go_before_the_final_punctuation_and_existing_markers_are_kept() -> None:
    marked = with_markers(ANSWER, attribute(ANSWER, SOURCES))
    assert marked == "Envoy listens on port 8080 [2]. The default model is all-MiniLM-L6-v2 [1]! I like turtles."
    already = "Envoy listens on port 8080 [1]. The default model is all-MiniLM-L6-v2."
    assert with_markers(already, attribute(already, SOURCES)) == (
        "Envoy listens on port 8080 [1]. The default model is all-MiniLM-L6-v2 [1]."
    )
    assert cited_numbers(marked) == {1, 2}


def test_streaming_attribution_reports_each_sentence_when_it_completes() -> None:
    stream = StreamingAttributor(SOURCES)
    pieces = ["Envoy listens", " on port 8080.", " The default", " model is all-MiniLM-L6-v2! I like", " turtles."]
    seen = [[a.number for a in stream.feed(piece)] for piece in pieces]
    assert seen == [[], [], [2], [1], []]  # a sentence completes when the space after its period arrives
    assert stream.finish() == []  # "I like turtles." has no source
    every = attribute(ANSWER, SOURCES)
    streamed = StreamingAttributor(SOURCES)
    collected = [a for piece in pieces for a in streamed.feed(piece)] + streamed.finish()
    assert collected == every and with_markers(streamed.text, collected) == with_markers(ANSWER, every)


def test_citation_scores_with_and_without_attribution() -> None:
    scores = citation_scores(ANSWER, SOURCES, 0.5)
    assert scores["cites"] == 0.0 and scores["cites_attributed"] == 1.0
    assert scores["faithfulness"] == 0.0 and scores["faithfulness_attributed"] == pytest.approx(2 / 3)
    assert scores["grounded"] == pytest.approx(2 / 3)
    wrong = citation_scores("Envoy listens on port 8080 [1].", SOURCES, 0.5)  # cites the wrong source
    assert wrong["cites"] == 1.0 and wrong["faithfulness"] == 0.0 and wrong["faithfulness_attributed"] == 0.0
    assert citation_scores("It is 8080 [7].", SOURCES, 0.5)["cites"] == 0.0  # no source 7
