"""Citations that do not depend on the model obeying the prompt.

A small model often answers without the ``[n]`` markers the prompt asks for. These pure
functions attribute each answer sentence to the source it overlaps most (share of the
sentence's content words found in the source, above a threshold) and insert the markers.
``StreamingAttributor`` does the same while tokens arrive: it reports each sentence's
attribution as soon as the sentence is complete, so a stream can pass the text through
unchanged and send the attributions (or a marker delta) when a sentence ends.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

#: A sentence ends at ., ! or ? followed by white space (or at a blank line).
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n\s*\n")
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
MARKER = re.compile(r"\[(\d{1,3})\]")
#: Function words carry no evidence that a sentence comes from a source.
STOPWORDS = frozenset(
    {
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "has",
        "have",
        "how",
        "in",
        "into",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "so",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "this",
        "those",
        "to",
        "was",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
    }
)
DEFAULT_THRESHOLD = 0.5


@dataclass(frozen=True)
class Sentence:
    """A sentence of a text: its characters ``text[start:end]`` (no surrounding space)."""

    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Attribution:
    """One answer sentence and the source it overlaps most.

    ``source`` is the 0-based index into the sources, ``number`` the 1-based marker,
    ``score`` the share of the sentence's content words found in that source.
    """

    sentence: Sentence
    source: int
    score: float

    @property
    def number(self) -> int:
        """The marker's number, ``[number]``."""
        return self.source + 1


def content_words(text: str) -> list[str]:
    """Lower-cased words of ``text`` without function words and without ``[n]`` markers."""
    return [w for w in _WORD.findall(MARKER.sub(" ", text).lower()) if w not in STOPWORDS]


def sentences(text: str) -> list[Sentence]:
    """The non-empty sentences of ``text`` with their character offsets."""
    found: list[Sentence] = []
    start = 0
    for match in [*_SENTENCE_END.finditer(text), None]:
        end = match.start() if match else len(text)
        piece = text[start:end]
        stripped = piece.strip()
        if stripped:
            offset = start + (len(piece) - len(piece.lstrip()))
            found.append(Sentence(offset, offset + len(stripped), stripped))
        start = match.end() if match else len(text)
    return found


def overlap(sentence: str, source_words: set[str]) -> float:
    """Share of the sentence's content words that occur in the source (0 when it has none)."""
    words = content_words(sentence)
    if not words:
        return 0.0
    return sum(word in source_words for word in words) / len(words)


def best_source(sentence: Sentence, source_words: Sequence[set[str]], threshold: float) -> Attribution | None:
    """The source the sentence overlaps most, if that overlap reaches ``threshold``
    (ties go to the earlier, higher-ranked source)."""
    best: Attribution | None = None
    for index, words in enumerate(source_words):
        score = overlap(sentence.text, words)
        if score >= threshold and (best is None or score > best.score):
            best = Attribution(sentence, index, score)
    return best


def attribute(answer: str, sources: Sequence[str], threshold: float = DEFAULT_THRESHOLD) -> list[Attribution]:
    """Each sentence of ``answer`` with the source it overlaps most, above ``threshold``;
    sentences that no source supports are left out."""
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    words = [set(content_words(source)) for source in sources]
    found = (best_source(sentence, words, threshold) for sentence in sentences(answer))
    return [a for a in found if a is not None]


def cited_numbers(text: str) -> set[int]:
    """The marker numbers ``[n]`` that ``text`` carries."""
    return {int(number) for number in MARKER.findall(text)}


def with_markers(answer: str, attributions: Sequence[Attribution]) -> str:
    """``answer`` with ``[n]`` after each attributed sentence (before its final
    punctuation); sentences that already carry a marker are left as they are."""
    pieces: list[str] = []
    position = 0
    for attribution in sorted(attributions, key=lambda a: a.sentence.start):
        sentence = attribution.sentence
        if MARKER.search(sentence.text):
            continue
        body = sentence.text.rstrip(".!?")
        cut = sentence.start + len(body)
        pieces += [answer[position:cut], f" [{attribution.number}]"]
        position = cut
    pieces.append(answer[position:])
    return "".join(pieces)


class StreamingAttributor:
    """Attributes sentences of a streamed answer as they complete.

    ``feed`` takes each text delta and returns the attributions of the sentences that the
    delta completed; ``finish`` returns the last sentence's. Offsets are relative to the
    whole answer, so ``with_markers(full_text, all_attributions)`` gives the marked text.
    """

    def __init__(self, sources: Sequence[str], threshold: float = DEFAULT_THRESHOLD) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self._words = [set(content_words(source)) for source in sources]
        self._threshold = threshold
        self._text = ""
        self._done = 0  # characters whose sentences were already attributed

    @property
    def text(self) -> str:
        """The answer received so far."""
        return self._text

    def feed(self, delta: str) -> list[Attribution]:
        """Add ``delta``; the attributions of sentences it completed."""
        self._text += delta
        pending = self._text[self._done :]
        ends = list(_SENTENCE_END.finditer(pending))
        if not ends:
            return []
        complete_until = self._done + ends[-1].end()
        return self._attribute_until(complete_until)

    def finish(self) -> list[Attribution]:
        """The attribution of the last, unterminated sentence (if any)."""
        return self._attribute_until(len(self._text))

    def _attribute_until(self, end: int) -> list[Attribution]:
        found: list[Attribution] = []
        for sentence in sentences(self._text[self._done : end]):
            placed = Sentence(sentence.start + self._done, sentence.end + self._done, sentence.text)
            attribution = best_source(placed, self._words, self._threshold)
            if attribution is not None:
                found.append(attribution)
        self._done = end
        return found
