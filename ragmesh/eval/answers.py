"""Deterministic answer scores against reference answers, as in the SQuAD v1.1 script.

Normalisation (lower case, no punctuation, no articles a/an/the, single spaces) follows
the official evaluation script; each score is the best over the reference answers.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Sequence

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = str.maketrans("", "", string.punctuation)


def normalize(text: str) -> str:
    """SQuAD's normalisation: lower case, punctuation and articles removed, spaces collapsed."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


def exact_match(prediction: str, references: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals a normalised reference."""
    return float(any(normalize(prediction) == normalize(ref) for ref in references))


def _f1(prediction: str, reference: str) -> float:
    predicted, expected = normalize(prediction).split(), normalize(reference).split()
    common = sum((Counter(predicted) & Counter(expected)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(expected)
    return 2 * precision * recall / (precision + recall)


def token_f1(prediction: str, references: Sequence[str]) -> float:
    """SQuAD's token F1, the best over the references."""
    return max((_f1(prediction, ref) for ref in references), default=0.0)


def containment(prediction: str, references: Sequence[str]) -> float:
    """1.0 when a normalised reference occurs in the normalised prediction (word-aligned)."""
    padded = f" {normalize(prediction)} "
    return float(any(f" {normalize(ref)} " in padded for ref in references if normalize(ref)))


def answer_scores(prediction: str, references: Sequence[str]) -> dict[str, float]:
    """Exact match, token F1 and containment of ``prediction``."""
    return {
        "exact_match": exact_match(prediction, references),
        "token_f1": token_f1(prediction, references),
        "containment": containment(prediction, references),
    }
