"""A query's options as the client takes them (plain Python values), and the QueryRequest
they make."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ragmesh.v1 import common_pb2, orchestrator_pb2
from ragmesh.vocabulary import ContextMode, ConversationQuery, RerankMethod, Role, SearchMode, choice
from ragmesh.vocabulary.protobuf import (
    CONTEXT_MODE_PROTO,
    CONVERSATION_QUERY_PROTO,
    RERANK_PROTO,
    ROLE_PROTO,
    SEARCH_MODE_PROTO,
)


@dataclass(frozen=True)
class QueryOptions:
    """Pipeline options of a query; None leaves the server's default."""

    rerank: str | None = None
    candidates: int | None = None
    mmr_lambda: float | None = None
    search_mode: str | None = None
    max_new_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    filters: Sequence[common_pb2.Filter] = ()
    bypass_cache: bool = False
    retrieval_only: bool = False
    variant: str = ""
    #: Earlier turns, oldest first: (role, content) pairs with role "user" or "assistant".
    history: Sequence[tuple[str, str]] = ()
    #: How a follow-up's retrieval query is built: "last", "concat" or "rewrite".
    conversation_query: str | None = None
    #: What of each retrieved chunk the model reads: "chunks" or "sentences".
    context: str | None = None


def query_request(
    query: str, collection: str, top_k: int, caller_id: str, options: QueryOptions
) -> orchestrator_pb2.QueryRequest:
    """A QueryRequest from the client's arguments."""
    request = orchestrator_pb2.QueryRequest(
        query=query, collection=collection, top_k=top_k, filters=list(options.filters)
    )
    request.context.caller_id = caller_id
    request.context.experiment_variant = options.variant
    wanted = request.options
    if options.rerank:
        wanted.rerank = RERANK_PROTO[choice(RerankMethod, "rerank", options.rerank)]
    if options.search_mode:
        wanted.search_mode = SEARCH_MODE_PROTO[choice(SearchMode, "search_mode", options.search_mode)]
    if options.conversation_query:
        how = choice(ConversationQuery, "conversation_query", options.conversation_query)
        wanted.conversation_query = CONVERSATION_QUERY_PROTO[how]
    if options.context:
        wanted.context = CONTEXT_MODE_PROTO[choice(ContextMode, "context", options.context)]
    for role, content in options.history:
        turn = request.history.add(content=content)
        turn.role = ROLE_PROTO[choice(Role, "history role", role)]
    if options.candidates is not None:
        wanted.candidates = options.candidates
    if options.mmr_lambda is not None:
        wanted.mmr_lambda = options.mmr_lambda
    for name in ("max_new_tokens", "temperature", "top_p", "seed"):  # SamplingParams' names
        if (value := getattr(options, name)) is not None:
            setattr(wanted.sampling, name, value)
    wanted.bypass_cache = options.bypass_cache
    wanted.retrieval_only = options.retrieval_only
    return request
