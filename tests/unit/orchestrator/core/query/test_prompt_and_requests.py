"""Prompt fitting to the context window, and request validation / cache-key material."""

from __future__ import annotations

import dataclasses

import pytest

from ragmesh.v1 import orchestrator_pb2
from ragmesh.vocabulary import FilterOp, RerankMethod, Role
from services.common.errors import InvalidArgument
from services.orchestrator.config import OrchestratorConfig
from services.orchestrator.core.domain import Filter, QueryInput, Sampling, Turn
from services.orchestrator.core.ports import TokenCounts
from services.orchestrator.core.query.prompt import PER_SOURCE_TOKENS, SAFETY_TOKENS, build_turns, fit
from services.orchestrator.core.requests import resolve
from services.orchestrator.transport.grpc.messages import query_input

DEFAULTS = OrchestratorConfig.from_env({}).core.defaults


def test_turns_number_the_sources_and_ask_for_citations() -> None:
    system, user = build_turns("Who made it?", ["Ada made it.", "It is blue."])
    assert system.role == Role.SYSTEM and "[1]" in system.content
    assert "[1] Ada made it." in user.content and "[2] It is blue." in user.content
    assert user.content.index("[2]") < user.content.index("[1]")  # the best source sits next to the question
    assert user.content.endswith("[1] Ada made it.\n\nQuestion: Who made it?")


def test_fit_keeps_whole_sources_in_rank_order_within_the_budget() -> None:
    counts = TokenCounts(text_tokens=[100, 500, 80, 40], prompt_tokens=50)
    budget_for_sources = 900 - 300 - 50 - SAFETY_TOKENS  # context - answer - base prompt - safety
    assert 100 + 80 + 40 + 3 * PER_SOURCE_TOKENS <= budget_for_sources < 100 + 500 + 2 * PER_SOURCE_TOKENS
    fitted = fit("q", ["a", "b", "c", "d"], [], counts, context_length=900, max_new_tokens=300)
    assert fitted.included == [0, 2, 3]  # "b" does not fit and is left out whole
    assert "[1] a" in fitted.turns[1].content and "[3] d" in fitted.turns[1].content


def test_fit_with_no_room_includes_nothing() -> None:
    counts = TokenCounts(text_tokens=[10], prompt_tokens=900)
    assert fit("q", ["a"], [], counts, context_length=1000, max_new_tokens=100).included == []


def test_fit_keeps_the_newest_history_turns_after_the_sources() -> None:
    history = [Turn(Role.USER, "old"), Turn(Role.ASSISTANT, "older answer"), Turn(Role.USER, "new")]
    counts = TokenCounts(text_tokens=[10, 30, 30, 10], prompt_tokens=20)  # one source, three turns
    fitted = fit("q", ["s"], history, counts, context_length=20 + 10 + SAFETY_TOKENS + 70, max_new_tokens=10)
    assert fitted.included == [0] and fitted.history_dropped == 2
    assert [t.content for t in fitted.turns[1:-1]] == ["new"]


def test_spec_fills_defaults() -> None:
    spec = resolve(QueryInput("  What is ragmesh? "), DEFAULTS)
    assert (spec.query, spec.collection, spec.top_k, spec.rerank) == ("What is ragmesh?", "default", 4, "none")
    assert spec.candidates == spec.top_k  # no reranking: fetch only what is used
    assert spec.sampling.max_new_tokens == DEFAULTS.max_new_tokens
    assert spec.variant == "default"


@pytest.mark.parametrize(
    ("request_kwargs", "message"),
    [
        ({"query": ""}, "query is empty"),
        ({"query": "x" * 4001}, "limit is 4000"),
        ({"query": "q", "top_k": 51}, "top_k must be between 1 and 50"),
        ({"query": "q", "collection": "bad name"}, "collection name"),
        ({"query": "q", "collection": "x'; drop"}, "collection name"),
        ({"query": "q", "options": {"rerank": 9}}, "unknown rerank"),
        ({"query": "q", "options": {"rerank": 2, "candidates": 500}}, "candidates must be between"),
        ({"query": "q", "options": {"mmr_lambda": 1.5}}, "mmr_lambda"),
        ({"query": "q", "options": {"mmr_lambda": float("nan")}}, "mmr_lambda"),
        ({"query": "q", "options": {"search_mode": 7}}, "search_mode"),
        ({"query": "q", "options": {"conversation_query": 9}}, "conversation_query"),
        ({"query": "q", "options": {"sampling": {"temperature": float("inf")}}}, "finite"),
        ({"query": "q", "history": [{"role": 0, "content": "x"}]}, r"history\[0\]: role"),
        ({"query": "q", "history": [{"role": 1, "content": "x"}]}, r"history\[0\]: role must be user or assistant"),
        ({"query": "q", "history": [{"role": 2, "content": "  "}]}, r"history\[0\]: content is empty"),
        ({"query": "q", "history": [{"role": 2, "content": "x"}] * 65}, "limit is 64"),
        ({"query": "q", "filters": [{"field": "a", "op": 99}]}, r"filters\[0\]: op"),
    ],
)
def test_bad_requests_are_invalid_arguments(request_kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        resolve(query_input(orchestrator_pb2.QueryRequest(**request_kwargs)), DEFAULTS)  # type: ignore[arg-type]


def _material(**changes: object) -> dict[str, object]:
    request = QueryInput("What is ragmesh?")
    fields: dict[str, object] = {}
    for name, value in changes.items():
        if name == "filter":
            fields["filters"] = [Filter("lang", FilterOp.EQ, str(value))]
        elif name == "max_new_tokens":
            fields["sampling"] = Sampling(max_new_tokens=int(value))  # type: ignore[call-overload]
        else:
            fields[name] = value
    return resolve(dataclasses.replace(request, **fields), DEFAULTS).cache_material("3.0")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "change",
    [
        {"collection": "other"},
        {"top_k": 2},
        {"filter": "en"},
        {"rerank": RerankMethod.MMR},
        {"max_new_tokens": 17},
        {"variant": "b"},
        {"query": "What is Envoy?"},
        {"history": (Turn(Role.USER, "About Envoy."),)},
    ],
)
def test_everything_that_changes_an_answer_changes_the_cache_material(change: dict[str, object]) -> None:
    assert _material(**change) != _material()


def test_the_cache_material_ignores_case_and_spacing_of_the_query() -> None:
    assert _material(query="  what   is RAGMESH? ") == _material()
