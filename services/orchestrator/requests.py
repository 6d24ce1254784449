"""Turning a QueryRequest into a validated, defaults-filled :class:`QuerySpec`.

Everything that changes an answer lives in the spec, so the cache key is built from it
alone (plus the collection's version).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from google.protobuf.json_format import MessageToDict

from ragmesh.v1 import common_pb2, orchestrator_pb2, retriever_pb2
from services.common.errors import InvalidArgument
from services.common.names import IDENTIFIER
from services.orchestrator.config import QueryDefaults

MAX_QUERY_CHARS = 4000
MAX_TOP_K = 50
MAX_CANDIDATES = 200
MAX_FILTERS = 16
RERANK_NAMES = {
    orchestrator_pb2.RERANK_METHOD_NONE: "none",
    orchestrator_pb2.RERANK_METHOD_MMR: "mmr",
    orchestrator_pb2.RERANK_METHOD_CROSS_ENCODER: "cross_encoder",
}


@dataclass(frozen=True)
class QuerySpec:
    """A query with every option resolved."""

    query: str
    collection: str
    top_k: int
    candidates: int
    filters: list[common_pb2.Filter]
    rerank: str
    mmr_lambda: float
    sampling: common_pb2.SamplingParams
    search_mode: retriever_pb2.SearchMode.ValueType
    bypass_cache: bool
    retrieval_only: bool
    caller_id: str
    variant: str

    def cache_material(self, version: str) -> dict[str, Any]:
        """Everything the answer depends on, JSON-serialisable, for the cache key."""
        return {
            "query": " ".join(self.query.lower().split()),
            "collection": self.collection,
            "version": version,
            "top_k": self.top_k,
            "candidates": self.candidates if self.rerank != "none" else 0,
            "filters": [MessageToDict(f, preserving_proto_field_name=True) for f in self.filters],
            "rerank": self.rerank,
            "mmr_lambda": self.mmr_lambda if self.rerank == "mmr" else None,
            "sampling": MessageToDict(self.sampling, preserving_proto_field_name=True),
            "search_mode": self.search_mode,
            "retrieval_only": self.retrieval_only,
            "variant": self.variant,
        }


def check_collection(name: str) -> str:
    """``name`` when it is a valid collection name; InvalidArgument otherwise."""
    if not IDENTIFIER.fullmatch(name):
        raise InvalidArgument(
            f"collection name {name[:80]!r} is invalid: use 1-64 letters, digits or underscores, starting with a letter"
        )
    return name


def build_spec(request: orchestrator_pb2.QueryRequest, defaults: QueryDefaults) -> QuerySpec:
    """Validate ``request`` and fill what it leaves unset from ``defaults``."""
    query = request.query.strip()
    if not query:
        raise InvalidArgument("query is empty; ask a question")
    if len(query) > MAX_QUERY_CHARS:
        raise InvalidArgument(f"query has {len(query)} characters; the limit is {MAX_QUERY_CHARS}")
    top_k = request.top_k or defaults.top_k
    if not 1 <= top_k <= MAX_TOP_K:
        raise InvalidArgument(f"top_k must be between 1 and {MAX_TOP_K}, got {request.top_k}")
    options = request.options
    rerank = _rerank(options.rerank, defaults.rerank)
    candidates = options.candidates or max(defaults.candidates, top_k)
    if not top_k <= candidates <= MAX_CANDIDATES:
        raise InvalidArgument(f"candidates must be between top_k ({top_k}) and {MAX_CANDIDATES}, got {candidates}")
    mmr_lambda = options.mmr_lambda if options.HasField("mmr_lambda") else defaults.mmr_lambda
    if not 0.0 <= mmr_lambda <= 1.0:
        raise InvalidArgument(f"mmr_lambda must be between 0 and 1, got {mmr_lambda}")
    if len(request.filters) > MAX_FILTERS:
        raise InvalidArgument(f"{len(request.filters)} filters; the limit is {MAX_FILTERS}")
    if options.search_mode not in retriever_pb2.SearchMode.values():
        raise InvalidArgument(f"unknown search_mode {options.search_mode}")
    return QuerySpec(
        query=query,
        collection=check_collection(request.collection or defaults.collection),
        top_k=top_k,
        candidates=candidates if rerank != "none" else top_k,
        filters=list(request.filters),
        rerank=rerank,
        mmr_lambda=mmr_lambda,
        sampling=_sampling(options.sampling, defaults),
        search_mode=options.search_mode,
        bypass_cache=options.bypass_cache,
        retrieval_only=options.retrieval_only,
        caller_id=request.context.caller_id,
        variant=request.context.experiment_variant or "default",
    )


def _rerank(method: orchestrator_pb2.RerankMethod.ValueType, default: str) -> str:
    if method == orchestrator_pb2.RERANK_METHOD_UNSPECIFIED:
        return default
    name = RERANK_NAMES.get(method)
    if name is None:
        raise InvalidArgument(f"unknown rerank method {method}; use NONE, MMR or CROSS_ENCODER")
    return name


def _sampling(requested: common_pb2.SamplingParams, defaults: QueryDefaults) -> common_pb2.SamplingParams:
    """The request's sampling with the orchestrator's defaults for unset fields (the
    generator validates ranges; the orchestrator only fills gaps)."""
    sampling = common_pb2.SamplingParams()
    sampling.CopyFrom(requested)
    if not sampling.HasField("max_new_tokens"):
        sampling.max_new_tokens = defaults.max_new_tokens
    if not sampling.HasField("temperature"):
        sampling.temperature = defaults.temperature
    return sampling
