"""Turning a :class:`QueryInput` (from any transport) into a validated, defaults-filled
:class:`QuerySpec`.

Everything that changes an answer lives in the spec, so the cache key is built from it
alone (plus the collection's version). Limits are named in every error, so a caller can
fix the request.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass
from typing import Any

from ragmesh.vocabulary import ContextMode, ConversationQuery, RerankMethod, Role, SearchMode
from ragmesh.vocabulary.limits import MAX_CANDIDATES, MAX_QUERY_FILTERS, MAX_TOP_K
from ragmesh.vocabulary.names import IDENTIFIER
from services.common.errors import InvalidArgument
from services.orchestrator.core.domain import Filter, QueryInput, Sampling, Turn
from services.orchestrator.core.experiments.assignment import Assignment
from services.orchestrator.core.settings import QueryDefaults

MAX_QUERY_CHARS = 4000
MAX_HISTORY_TURNS = 64
MAX_TURN_CHARS = 32_000
MAX_HISTORY_CHARS = 200_000


@dataclass(frozen=True)
class QuerySpec:
    """A query with every option resolved."""

    query: str
    collection: str
    top_k: int
    candidates: int
    filters: tuple[Filter, ...]
    rerank: RerankMethod
    mmr_lambda: float
    sampling: Sampling
    search_mode: SearchMode
    bypass_cache: bool
    retrieval_only: bool
    caller_id: str
    variant: str
    history: tuple[Turn, ...] = ()
    conversation_query: ConversationQuery = ConversationQuery.CONCAT
    #: What of each chunk the model reads, and the characters ``sentences`` keeps.
    context: ContextMode = ContextMode.SENTENCES
    context_chars: int = 600
    #: Tenant scope the answer belongs to (caches never mix scopes).
    scope: str = ""
    #: The experiment the query runs under ("" for none) and its variant's prompt template.
    experiment: str = ""
    prompt_template: str | None = None
    #: How the query was assigned its variant (not part of the answer: kept out of the cache key).
    assignment: Assignment | None = None

    def cache_material(self, version: str) -> dict[str, Any]:
        """Everything the answer depends on, JSON-serialisable, for the cache key."""
        return {
            "query": _normalised(self.query),
            "collection": self.collection,
            "version": version,
            "top_k": self.top_k,
            "candidates": self.candidates if self.rerank != RerankMethod.NONE else 0,
            "filters": [dataclasses.astuple(f) for f in self.filters],
            "rerank": self.rerank.value,
            "mmr_lambda": self.mmr_lambda if self.rerank == RerankMethod.MMR else None,
            "sampling": dataclasses.asdict(self.sampling),
            "search_mode": self.search_mode.value,
            "retrieval_only": self.retrieval_only,
            "variant": self.variant,
            "history": [[t.role.value, _normalised(t.content)] for t in self.history],
            "conversation_query": self.conversation_query.value if self.history else None,
            "context": [self.context.value, self.context_chars if self.context is ContextMode.SENTENCES else 0],
            "scope": self.scope,
            "experiment": self.experiment,
            "prompt_template": self.prompt_template,
        }


def _normalised(text: str) -> str:
    return " ".join(text.lower().split())


def check_collection(name: str) -> str:
    """``name`` when it is a valid collection name; InvalidArgument otherwise."""
    if not IDENTIFIER.fullmatch(name):
        raise InvalidArgument(
            f"collection name {name[:80]!r} is invalid: use 1-64 letters, digits or underscores, starting with a letter"
        )
    return name


_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")


def check_job_id(job_id: str) -> str:
    """``job_id`` when it has the shape of a job id; InvalidArgument otherwise (an empty or
    malformed id is the caller's mistake, not a job that does not exist)."""
    if not job_id:
        raise InvalidArgument("job_id is empty; pass the id SubmitIngestJob returned")
    if not _JOB_ID.fullmatch(job_id):
        raise InvalidArgument(
            f"job_id {job_id[:80]!r} is malformed: job ids are the letters and digits SubmitIngestJob returns"
        )
    return job_id


def resolve(request: QueryInput, defaults: QueryDefaults) -> QuerySpec:
    """Validate ``request`` and fill what it leaves unset from ``defaults``."""
    query = request.query.strip()
    if not query:
        raise InvalidArgument("query is empty; ask a question")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidArgument(f"query has {len(query)} characters; the limit is {MAX_QUERY_CHARS}")
    top_k = request.top_k or defaults.top_k
    if not 1 <= top_k <= MAX_TOP_K:
        raise InvalidArgument(f"top_k must be between 1 and {MAX_TOP_K}, got {request.top_k}")
    rerank = request.rerank or defaults.rerank
    candidates = request.candidates or max(defaults.candidates, top_k)
    if not top_k <= candidates <= MAX_CANDIDATES:
        raise InvalidArgument(f"candidates must be between top_k ({top_k}) and {MAX_CANDIDATES}, got {candidates}")
    mmr_lambda = defaults.mmr_lambda if request.mmr_lambda is None else request.mmr_lambda
    if not (math.isfinite(mmr_lambda) and 0.0 <= mmr_lambda <= 1.0):
        raise InvalidArgument(f"mmr_lambda must be between 0 and 1, got {mmr_lambda}")
    if len(request.filters) > MAX_QUERY_FILTERS:
        raise InvalidArgument(f"{len(request.filters)} filters; the limit is {MAX_QUERY_FILTERS}")
    return QuerySpec(
        query=query,
        collection=check_collection(request.collection or defaults.collection),
        top_k=top_k,
        candidates=candidates if rerank != RerankMethod.NONE else top_k,
        filters=tuple(request.filters),
        rerank=rerank,
        mmr_lambda=mmr_lambda,
        sampling=_sampling(request.sampling, defaults),
        search_mode=request.search_mode,
        bypass_cache=request.bypass_cache,
        retrieval_only=request.retrieval_only,
        caller_id=request.caller_id,
        variant=request.variant or "default",
        history=check_history(request.history),
        conversation_query=request.conversation_query or defaults.conversation_query,
        context=request.context or defaults.context,
        context_chars=defaults.context_chars,
    )


def check_history(history: tuple[Turn, ...] | list[Turn] | Any) -> tuple[Turn, ...]:
    """Earlier turns: user and assistant only, non-empty, bounded; InvalidArgument names the turn."""
    turns = tuple(history)
    if len(turns) > MAX_HISTORY_TURNS:
        raise InvalidArgument(f"history has {len(turns)} turns; the limit is {MAX_HISTORY_TURNS}")
    total = 0
    for index, turn in enumerate(turns):
        if turn.role not in (Role.USER, Role.ASSISTANT):
            raise InvalidArgument(f"history[{index}]: role must be user or assistant, got {turn.role.value}")
        if not turn.content.strip():
            raise InvalidArgument(f"history[{index}]: content is empty")
        if len(turn.content) > MAX_TURN_CHARS:
            raise InvalidArgument(
                f"history[{index}]: content has {len(turn.content)} characters; the limit is {MAX_TURN_CHARS}"
            )
        total += len(turn.content)
    if total > MAX_HISTORY_CHARS:
        raise InvalidArgument(f"history has {total} characters in all; the limit is {MAX_HISTORY_CHARS}")
    return turns


def _sampling(requested: Sampling, defaults: QueryDefaults) -> Sampling:
    """The request's sampling with the orchestrator's defaults for unset fields (the
    generator validates ranges; the orchestrator only fills gaps)."""
    for name in ("temperature", "top_p", "repetition_penalty"):
        value = getattr(requested, name)
        if value is not None and not math.isfinite(value):
            raise InvalidArgument(f"sampling.{name} must be a finite number, got {value}")
    return dataclasses.replace(
        requested,
        max_new_tokens=defaults.max_new_tokens if requested.max_new_tokens is None else requested.max_new_tokens,
        temperature=defaults.temperature if requested.temperature is None else requested.temperature,
    )
