"""What every query under an experiment records, the feedback that joins it later, and the
in-process store used when Redis is not configured (the Redis store is in
:mod:`.redis_records`; both follow :class:`RecordStore`).

A record is written once, when the query ends (answered, failed or cancelled). Feedback
arrives later, from any replica, keyed by the query's trace id; reads return each record
with its feedback joined.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections import deque
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Protocol

from cachetools import TTLCache

from ragmesh.vocabulary import CacheLevel
from services.common.errors import InvalidArgument, NotFound

MIN_RATING = 1.0
MAX_RATING = 5.0
MAX_GRADE = 3
MAX_LABELS = 100
MAX_LABEL_CHARS = 256
#: Trace ids are 32 hex characters; allow a little slack for other tracers.
TRACE_ID = re.compile(r"[0-9a-fA-F]{1,64}")


@dataclass(frozen=True)
class Feedback:
    """A caller's judgement of one answer."""

    #: 1 (bad) to 5 (good).
    rating: float
    #: Relevance grade (0 = not relevant to 3 = highly relevant) per chunk or document id.
    labels: dict[str, int] = field(default_factory=dict)
    timestamp: float = 0.0


@dataclass(frozen=True)
class QueryRecord:
    """One query run under an experiment variant."""

    experiment: str
    variant: str
    trace_id: str
    #: Seconds since the epoch when the query ended.
    timestamp: float
    latency_ms: float
    #: Arrival to first answer token (None when no token was produced).
    ttft_ms: float | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    #: "none" (the pipeline ran), "l1" or "l2".
    cache_level: CacheLevel = CacheLevel.NONE
    #: The gRPC status code name, or "" when the query succeeded.
    error_code: str = ""
    #: The caller forced this variant (such queries are not randomised: analyse with care).
    forced: bool = False
    feedback: Feedback | None = None

    @property
    def cache_hit(self) -> bool:
        """Served from either cache level."""
        return self.cache_level is not CacheLevel.NONE

    @property
    def ok(self) -> bool:
        """The query succeeded."""
        return not self.error_code

    def to_json(self) -> str:
        """The record without feedback (feedback is stored apart and joined on read)."""
        data = asdict(self)
        data.pop("feedback")
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str | bytes) -> QueryRecord:
        """The inverse of :meth:`to_json`; fields a newer or older writer added are ignored
        (replicas of two versions share a stream during a rollout). ValueError when the
        text is not a record."""
        data = json.loads(text)
        known = {f.name for f in fields(cls)} - {"feedback"}
        try:
            record = cls(**{k: v for k, v in data.items() if k in known})
            return replace(record, cache_level=CacheLevel(record.cache_level))
        except (TypeError, AttributeError) as error:
            raise ValueError(f"not an experiment record: {error}") from None


def check_record(record: QueryRecord) -> None:
    """Raise ValueError on a record the pipeline should never produce (a programming error)."""
    if record.cache_level not in tuple(CacheLevel):
        raise ValueError(f"cache_level must be one of {', '.join(CacheLevel)}, got {record.cache_level!r}")
    if not math.isfinite(record.latency_ms) or record.latency_ms < 0:
        raise ValueError(f"latency_ms must be a finite non-negative number, got {record.latency_ms}")


def check_feedback(trace_id: str, rating: float, labels: Mapping[str, int]) -> None:
    """InvalidArgument naming what is wrong with a feedback request."""
    if not TRACE_ID.fullmatch(trace_id):
        raise InvalidArgument(f"trace_id must be the hex trace id a query returned, got {trace_id[:80]!r}")
    if not math.isfinite(rating) or not MIN_RATING <= rating <= MAX_RATING:
        raise InvalidArgument(f"rating must be between {MIN_RATING:g} and {MAX_RATING:g}, got {rating}")
    if len(labels) > MAX_LABELS:
        raise InvalidArgument(f"{len(labels)} relevance labels; the limit is {MAX_LABELS}")
    for key, grade in labels.items():
        if not key or len(key) > MAX_LABEL_CHARS:
            raise InvalidArgument(f"relevance label ids must be 1-{MAX_LABEL_CHARS} characters, got {key[:80]!r}")
        if isinstance(grade, bool) or not isinstance(grade, int) or not 0 <= grade <= MAX_GRADE:
            raise InvalidArgument(f"relevance grade of {key[:80]!r} must be an integer 0-{MAX_GRADE}, got {grade!r}")


def unknown_trace(trace_id: str) -> NotFound:
    """The error for feedback on a trace id no experiment recorded (or whose window closed)."""
    return NotFound(
        f"no experiment query with trace id {trace_id} (unknown, not under an experiment, or older than the "
        "feedback window)"
    )


class RecordStore(Protocol):
    """Where experiment records live: in process or in Redis."""

    async def record_query(self, record: QueryRecord) -> None:
        """Store one query's record (never raises for a storage failure: it is counted)."""

    async def record_feedback(self, trace_id: str, rating: float, labels: Mapping[str, int]) -> tuple[str, str]:
        """Join feedback to the query of ``trace_id`` and return its (experiment, variant);
        NotFound when there is none."""

    async def read(self, experiment: str) -> list[QueryRecord]:
        """The kept records of ``experiment``, oldest first, feedback joined."""


class MemoryRecordStore:
    """Records in this process: a bounded deque per experiment, feedback in a bounded TTL map."""

    def __init__(self, max_records: int, feedback_ttl_seconds: float, max_traces: int = 100_000) -> None:
        self.max_records = max_records
        self._records: dict[str, deque[QueryRecord]] = {}
        # trace id -> experiment, for as long as feedback is accepted; bounded like the records.
        self._traces: TTLCache[str, tuple[str, str]] = TTLCache(max_traces, feedback_ttl_seconds)
        self._feedback: TTLCache[str, Feedback] = TTLCache(max_traces, feedback_ttl_seconds)

    async def record_query(self, record: QueryRecord) -> None:
        """Append ``record`` (the oldest falls out when the deque is full)."""
        check_record(record)
        self._records.setdefault(record.experiment, deque(maxlen=self.max_records)).append(record)
        if record.trace_id:
            self._traces[record.trace_id] = (record.experiment, record.variant)

    async def record_feedback(self, trace_id: str, rating: float, labels: Mapping[str, int]) -> tuple[str, str]:
        """Keep the feedback (a later one replaces an earlier one)."""
        check_feedback(trace_id, rating, labels)
        owner = self._traces.get(trace_id)
        if owner is None:
            raise unknown_trace(trace_id)
        self._feedback[trace_id] = Feedback(float(rating), dict(labels), time.time())
        return owner

    async def read(self, experiment: str) -> list[QueryRecord]:
        """The experiment's records with feedback joined."""
        return [
            replace(r, feedback=self._feedback.get(r.trace_id)) if r.trace_id else r
            for r in self._records.get(experiment, ())
        ]
