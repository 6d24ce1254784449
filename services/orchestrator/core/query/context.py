"""The context budget: what of each retrieved chunk the model reads.

With ``context=chunks`` the prompt carries every chunk whole. With ``context=sentences`` each
chunk is cut to the sentences that matter for the question — scored with BM25 over all the
retrieved chunks' sentences (what the mesh already has: no extra model, no extra call) — until
a budget of characters is spent, kept in their chunk's order so each sentence stays under its
source's number and citations still point to the right source. A prompt is mostly sources, and
its prefill is what a RAG answer costs on a CPU, so fewer prompt tokens is faster answers; a
small model is also easily distracted by long context.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from ragmesh.vocabulary import ContextMode
from ragmesh.vocabulary.citations import content_words, sentences
from services.orchestrator.core.requests import QuerySpec

#: BM25's term-frequency saturation and length normalisation (the usual values).
K1 = 1.2
B = 0.75
#: The short sentence after a strong match (at least half the best score) is kept too, when
#: it costs at most this many characters: an answer often sits one sentence after the words
#: of the question.
NEIGHBOUR_CHARS = 160
NEIGHBOUR_SCORE = 0.5
_SUFFIX = re.compile(r"(ing|ed|es|s)$")


@dataclass(frozen=True)
class _Scored:
    """One sentence of one chunk, and how well it matches the question."""

    source: int
    index: int
    text: str
    score: float


def select_sentences(question: str, texts: Sequence[str], budget_chars: int) -> list[str]:
    """Each text cut to its sentences that best match ``question`` (in their original order,
    joined by spaces) while the total stays within ``budget_chars``; a text none of whose
    sentences is kept becomes "". The best-matching sentence is always kept."""
    scored = _score(question, texts)
    if not scored:
        return list(texts)
    kept: set[tuple[int, int]] = set()
    spent = 0
    for sentence in sorted(scored, key=lambda s: (-s.score, s.source, s.index)):
        cost = len(sentence.text) + 1
        if kept and (sentence.score <= 0 or spent + cost > budget_chars):
            continue
        kept.add((sentence.source, sentence.index))
        spent += cost
    strong = {(s.source, s.index) for s in scored if s.score >= NEIGHBOUR_SCORE * max(t.score for t in scored) > 0}
    spent += _add_neighbours(scored, kept & strong, kept, budget_chars - spent)
    return [
        " ".join(s.text for s in scored if s.source == source and (s.source, s.index) in kept)
        for source in range(len(texts))
    ]


def _terms(text: str) -> list[str]:
    """Content words reduced to a crude stem ("listens", "listened" and "listen" match)."""
    return [_SUFFIX.sub("", word) if len(word) > 4 else word for word in content_words(text)]


def _score(question: str, texts: Sequence[str]) -> list[_Scored]:
    """Every sentence of every text with its BM25 score against the question's content words."""
    split = [[s.text for s in sentences(text)] for text in texts]
    words = [[_terms(sentence) for sentence in pieces] for pieces in split]
    documents = [w for pieces in words for w in pieces]
    if not documents:
        return []
    average = sum(len(d) for d in documents) / len(documents) or 1.0
    frequency = Counter(term for d in documents for term in set(d))
    query = set(_terms(question))
    scored = []
    for source, pieces in enumerate(split):
        for index, sentence in enumerate(pieces):
            terms = Counter(words[source][index])
            length = sum(terms.values())
            score = sum(
                _idf(frequency[t], len(documents))
                * terms[t]
                * (K1 + 1)
                / (terms[t] + K1 * (1 - B + B * length / average))
                for t in query
                if t in terms
            )
            scored.append(_Scored(source, index, sentence, score))
    return scored


def _idf(containing: int, documents: int) -> float:
    return math.log(1 + (documents - containing + 0.5) / (containing + 0.5))


def _add_neighbours(scored: list[_Scored], anchors: set[tuple[int, int]], kept: set[tuple[int, int]], left: int) -> int:
    """Keep the short sentence right after each anchor while the budget allows; the
    characters spent."""
    spent = 0
    following = {(s.source, s.index): s for s in scored}
    for source, index in sorted(anchors):
        after = following.get((source, index + 1))
        if after is None or (source, index + 1) in kept or len(after.text) > NEIGHBOUR_CHARS:
            continue
        if spent + len(after.text) + 1 > left:
            break
        kept.add((source, index + 1))
        spent += len(after.text) + 1
    return spent


def prompt_texts(spec: QuerySpec, texts: list[str]) -> tuple[list[str], list[int]]:
    """What the model reads of each ranked chunk (see :mod:`.context`), without the chunks
    cut to nothing, and the rank of each text kept."""
    if spec.context is ContextMode.CHUNKS:
        return texts, list(range(len(texts)))
    cut = select_sentences(spec.query, texts, spec.context_chars)
    usable = [index for index, text in enumerate(cut) if text]
    return [cut[index] for index in usable], usable
