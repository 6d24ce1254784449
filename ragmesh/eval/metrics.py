"""Retrieval metrics, computed by ir-measures (pytrec_eval, trec_eval's C code, underneath).

ir-measures was picked over ranx because of its start-up cost: on this machine ranx took
3.6-7 s to import and 6 s (numba cache warm) to 122 s (cold cache) for its first
evaluation while numba compiled its kernels; ir-measures imported in 0.06 s and evaluated
in 0.2 s the first time. Both gave the same values on ties-free runs.

Names in reports follow the common short forms: ``ndcg@k`` (trec_eval's nDCG, linear
gains from graded judgements), ``recall@k``, ``precision@k`` (divided by k, as
trec_eval does), ``f1@k`` (the library's set F-measure of the top k), ``mrr@k``
(reciprocal rank of the first relevant document within k), ``map@k`` (average
precision within k, over all relevant documents) and ``hit_rate@k`` (share of queries
with a relevant document within k). A document is relevant when its grade is >= 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import ir_measures
from ir_measures import AP, RR, R, SetF, Success, nDCG
from ir_measures import P as Precision

#: Stands in for "nothing retrieved", so that such a query scores 0 instead of being left
#: out of the means (trec_eval averages over the queries present in the run).
NO_RESULT = "\x00no-result"


@dataclass(frozen=True)
class Scores:
    """Mean metrics over the queries and each query's own values."""

    aggregate: dict[str, float]
    per_query: dict[str, dict[str, float]]


def cutoffs(k: int) -> list[int]:
    """The cutoffs reported for ``--k k``: 1, 5 and k."""
    return sorted({1, 5, k})


def measures(k: int) -> dict[str, Any]:
    """Report name -> ir-measures measure, for every ranked metric but F1."""
    named: dict[str, Any] = {f"mrr@{k}": RR @ k, f"map@{k}": AP @ k}
    for cutoff in cutoffs(k):
        named |= {
            f"ndcg@{cutoff}": nDCG @ cutoff,
            f"recall@{cutoff}": R @ cutoff,
            f"precision@{cutoff}": Precision @ cutoff,
            f"hit_rate@{cutoff}": Success @ cutoff,
        }
    return named


def document_ranking(document_ids: Iterable[str]) -> list[str]:
    """Documents in the order of their best chunk: each document once, at its best rank."""
    return list(dict.fromkeys(document_ids))


def as_run(rankings: Mapping[str, Sequence[str]], depth: int | None = None) -> dict[str, dict[str, float]]:
    """A run (query -> document -> score) from best-first rankings, without ties."""
    run: dict[str, dict[str, float]] = {}
    for query_id, ranking in rankings.items():
        top = list(ranking)[:depth] if depth is not None else list(ranking)
        run[query_id] = {doc: float(len(top) - rank) for rank, doc in enumerate(top)} or {NO_RESULT: 0.0}
    return run


def _per_query(found: Iterable[Any], names: Mapping[Any, str], rows: dict[str, dict[str, float]]) -> None:
    for metric in found:
        rows.setdefault(metric.query_id, {})[names[metric.measure]] = float(metric.value)


def evaluate(qrels: Mapping[str, Mapping[str, int]], rankings: Mapping[str, Sequence[str]], k: int) -> Scores:
    """Every metric at the cutoffs of ``k`` for the queries of ``qrels`` that have a
    relevant document; a query missing from ``rankings`` retrieved nothing."""
    judged = {q: dict(judgements) for q, judgements in qrels.items() if any(g > 0 for g in judgements.values())}
    if not judged:
        raise ValueError("no query has a relevant document; nothing to evaluate")
    complete = {q: list(rankings.get(q, ())) for q in judged}
    named = measures(k)
    by_measure = {measure: name for name, measure in named.items()}
    aggregate = {
        by_measure[m]: float(v) for m, v in ir_measures.calc_aggregate(named.values(), judged, as_run(complete)).items()
    }
    rows: dict[str, dict[str, float]] = {}
    _per_query(ir_measures.iter_calc(named.values(), judged, as_run(complete)), by_measure, rows)
    for cutoff in cutoffs(k):
        # F1 of the top `cutoff` documents: the set F-measure of the run cut there.
        truncated = as_run(complete, cutoff)
        aggregate[f"f1@{cutoff}"] = float(ir_measures.calc_aggregate([SetF], judged, truncated)[SetF])
        _per_query(ir_measures.iter_calc([SetF], judged, truncated), {SetF: f"f1@{cutoff}"}, rows)
    order = sorted(aggregate, key=_sort_key)
    return Scores({name: aggregate[name] for name in order}, rows)


def _sort_key(name: str) -> tuple[str, int]:
    metric, _, cutoff = name.partition("@")
    return metric, int(cutoff)
