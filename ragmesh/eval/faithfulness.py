"""Citation and faithfulness scores of one answer, with and without attribution.

"Raw" scores read the answer as the model wrote it; "attributed" scores read it after
``ragmesh.vocabulary.citations`` added ``[n]`` markers to sentences that carried none
(what the orchestrator will send once it runs attribution itself).
"""

from __future__ import annotations

from collections.abc import Sequence

from ragmesh.vocabulary import citations

SCORE_NAMES = ("cites", "cites_attributed", "faithfulness", "faithfulness_attributed", "grounded")


def cites(answer: str, source_count: int) -> bool:
    """Whether the answer cites at least one existing source as ``[n]``."""
    return any(1 <= n <= source_count for n in citations.cited_numbers(answer))


def faithfulness(answer: str, sources: Sequence[str], threshold: float) -> float:
    """Share of the answer's sentences supported by a source they cite: the sentence
    carries ``[n]`` and overlaps source n by at least ``threshold``."""
    found = citations.sentences(answer)
    if not found:
        return 0.0
    words = [set(citations.content_words(source)) for source in sources]
    supported = 0
    for sentence in found:
        cited = [n for n in citations.cited_numbers(sentence.text) if 1 <= n <= len(sources)]
        if any(citations.overlap(sentence.text, words[n - 1]) >= threshold for n in cited):
            supported += 1
    return supported / len(found)


def grounded(answer: str, sources: Sequence[str], threshold: float) -> float:
    """Share of the answer's sentences that some source supports (cited or not)."""
    found = citations.sentences(answer)
    if not found:
        return 0.0
    words = [set(citations.content_words(source)) for source in sources]
    hits = sum(any(citations.overlap(s.text, w) >= threshold for w in words) for s in found)
    return hits / len(found)


def citation_scores(answer: str, sources: Sequence[str], threshold: float) -> dict[str, float]:
    """Cite rate and faithfulness as written and after attribution, and groundedness."""
    attributed = citations.with_markers(answer, citations.attribute(answer, sources, threshold))
    return {
        "cites": float(cites(answer, len(sources))),
        "cites_attributed": float(cites(attributed, len(sources))),
        "faithfulness": faithfulness(answer, sources, threshold),
        "faithfulness_attributed": faithfulness(attributed, sources, threshold),
        "grounded": grounded(answer, sources, threshold),
    }
