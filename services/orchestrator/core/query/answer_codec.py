"""How a cached answer is stored: versioned JSON of the domain values (no protobuf),
so replicas of different versions never misread each other's entries."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

from ragmesh.vocabulary import FinishReason
from services.orchestrator.core.domain import Citation, Source

#: Bumped when the layout changes; an entry of another version is a miss.
#: 3: the citations are stored with the answer (a hit no longer recomputes them).
FORMAT = 3


@dataclass(frozen=True)
class CachedAnswer:
    """What a cache hit replays."""

    text: str
    sources: list[Source]
    finish_reason: FinishReason
    citations: tuple[Citation, ...] = ()
    #: The model cited nothing; ``cited_answer`` is the text with the markers added.
    citations_added: bool = False
    cited_answer: str = ""


class StaleEntry(ValueError):
    """An entry written in another format."""


def encode_answer(answer: CachedAnswer) -> bytes:
    """The stored form of ``answer``."""
    payload = {
        "format": FORMAT,
        "text": answer.text,
        "sources": [asdict(s) for s in answer.sources],
        "finish_reason": answer.finish_reason.value,
        "citations": [[c.start, c.end, c.source_number, c.score] for c in answer.citations],
        "citations_added": answer.citations_added,
        "cited_answer": answer.cited_answer,
    }
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()


def decode_answer(raw: bytes) -> CachedAnswer:
    """The answer stored as ``raw``; StaleEntry when it has another format."""
    payload = json.loads(raw)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise StaleEntry("cache entry of another format")
    sources = [Source(**s) for s in payload["sources"]]
    citations = tuple(Citation(int(a), int(b), int(n), float(score)) for a, b, n, score in payload["citations"])
    return CachedAnswer(
        payload["text"],
        sources,
        FinishReason(payload["finish_reason"]),
        citations,
        bool(payload["citations_added"]),
        str(payload["cited_answer"]),
    )
