"""The shipped evaluation set (corpus/) as embedding texts, and the quality measures that
compare one encoder backend with another: per-text cosine and dense retrieval metrics.

Passages are the corpus documents chunked by the orchestrator's own splitter at its
default size and at a finer one (more, shorter passages: a harder retrieval and more
texts to compare); a question's relevant document is the one named in questions.jsonl.
A document's rank is the rank of its best passage (in-process numpy dense search).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from services.embedder.backend import EncoderBackend, Vectors
from services.embedder.tokens import EncoderTokens
from services.orchestrator.core.ingest.chunking import split

CORPUS = Path(__file__).resolve().parents[2] / "corpus"
#: (chunk tokens, overlap): the orchestrator's defaults, and a finer setting it accepts.
CHUNKINGS = ((200, 32), (64, 16))


@dataclass(frozen=True)
class EvalSet:
    """Passages (with their document) and questions (with their relevant document)."""

    passages: list[str]
    passage_docs: list[str]
    questions: list[str]
    relevant: list[str]

    @property
    def texts(self) -> list[str]:
        """Every text the set embeds: passages, then questions."""
        return self.passages + self.questions


def load_eval_set(tokens: EncoderTokens, corpus: Path = CORPUS) -> EvalSet:
    """The corpus chunked with ``tokens`` (either backend's tokenizer), and its questions."""
    passages: list[str] = []
    docs: list[str] = []
    for path in sorted((corpus / "docs").glob("*.md")):
        text = path.read_text()
        (spans,) = tokens.spans([text], with_offsets=True)
        for size, overlap in CHUNKINGS:
            for piece in split(text, spans.starts, spans.ends, size, overlap):
                passages.append(piece.text)
                docs.append(path.name)
    rows = [json.loads(line) for line in (corpus / "questions.jsonl").read_text().splitlines() if line.strip()]
    return EvalSet(passages, docs, [row["question"] for row in rows], [row["document"] for row in rows])


def embed(encoder: EncoderBackend, texts: list[str], batch: int = 32) -> Vectors:
    """Vectors of ``texts`` in batches, too-long texts truncated as the service does."""
    parts = []
    for first in range(0, len(texts), batch):
        ids = [encoder.truncate(seq) for seq in encoder.encode_ids(texts[first : first + batch])]
        parts.append(encoder.embed_ids(ids))
    return np.concatenate(parts)


def cosines(left: Vectors, right: Vectors) -> Vectors:
    """Row-wise cosine similarity of two vector sets of the same shape."""
    dots = (left * right).sum(axis=1)
    return (dots / (np.linalg.norm(left, axis=1) * np.linalg.norm(right, axis=1))).astype(np.float32)


@dataclass(frozen=True)
class Retrieval:
    """Mean document-level retrieval metrics over the questions."""

    recall_at_5: float
    ndcg_at_10: float


def retrieval_metrics(eval_set: EvalSet, vectors: Vectors) -> Retrieval:
    """recall@5 and nDCG@10 of dense search with ``vectors`` (passages then questions)."""
    count = len(eval_set.passages)
    passages, questions = vectors[:count], vectors[count:]
    recalls, gains = [], []
    for query, relevant in zip(questions, eval_set.relevant, strict=True):
        order = np.argsort(-(passages @ query), kind="stable")
        ranked = list(dict.fromkeys(eval_set.passage_docs[i] for i in order))  # best passage per document
        rank = ranked.index(relevant) if relevant in ranked else math.inf
        recalls.append(1.0 if rank < 5 else 0.0)
        gains.append(1.0 / math.log2(rank + 2) if rank < 10 else 0.0)  # one relevant doc: ideal DCG is 1
    return Retrieval(float(np.mean(recalls)), float(np.mean(gains)))


@dataclass(frozen=True)
class Comparison:
    """A candidate backend measured against a reference backend on the eval set."""

    texts: int
    min_cosine: float
    mean_cosine: float
    reference: Retrieval
    candidate: Retrieval

    @property
    def recall5_delta(self) -> float:
        """Candidate minus reference recall@5."""
        return self.candidate.recall_at_5 - self.reference.recall_at_5

    @property
    def ndcg10_delta(self) -> float:
        """Candidate minus reference nDCG@10."""
        return self.candidate.ndcg_at_10 - self.reference.ndcg_at_10

    def passes(self, min_cosine: float = 0.99, max_delta: float = 0.005) -> bool:
        """The quality gate: every cosine and both metric changes within bounds."""
        return (
            self.min_cosine >= min_cosine
            and abs(self.recall5_delta) <= max_delta
            and abs(self.ndcg10_delta) <= max_delta
        )


def compare(eval_set: EvalSet, reference: Vectors, candidate: Vectors) -> Comparison:
    """Cosine per text and retrieval metrics of both vector sets of ``eval_set.texts``."""
    similarity = cosines(reference, candidate)
    return Comparison(
        texts=len(similarity),
        min_cosine=float(similarity.min()),
        mean_cosine=float(similarity.mean()),
        reference=retrieval_metrics(eval_set, reference),
        candidate=retrieval_metrics(eval_set, candidate),
    )
