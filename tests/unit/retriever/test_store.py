"""The Milvus store's edges without a server: error translation, the milvus-lite path lock,
score directions and reading a collection's layout back."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Any

import grpc
import pytest
from pymilvus import MilvusException

from ragmesh.vocabulary import SearchMode
from services.common.errors import DeadlineExceeded, FailedPrecondition, NotFound, Overloaded, Unavailable
from services.common.server import StartupError
from services.retriever.backend import ChunkRow, CollectionSpec, IndexKind, Metric, SearchQuery
from services.retriever.config import RetrieverConfig
from services.retriever.local_path import claim_local_path, path_is_locked
from services.retriever.schema import bm25_score, dense_score, spec_from_description
from services.retriever.store import MilvusStore

SPEC = CollectionSpec("docs", 2, Metric.COSINE, IndexKind.HNSW, full_text=True)
QUERY = SearchQuery(SearchMode.DENSE, 3, [1.0, 0.0], "", "", return_vectors=False)


class FailingClient:
    """A MilvusClient stand-in whose every call raises the given error."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise self.error

        return fail


def _store(error: Exception) -> MilvusStore:
    config = RetrieverConfig.from_env({"RAGMESH_RETRIEVER_URI": "http://milvus:19530"})
    return MilvusStore(FailingClient(error), config, None, frozenset(IndexKind))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (MilvusException(code=100, message="collection not found"), NotFound),
        (MilvusException(code=grpc.StatusCode.UNAVAILABLE, message="connection refused"), Unavailable),
        (MilvusException(code=grpc.StatusCode.DEADLINE_EXCEEDED, message="slow"), DeadlineExceeded),
        (MilvusException(code=8, message="rate limit exceeded"), Overloaded),
    ],
)
def test_milvus_errors_become_domain_errors(error: Exception, expected: type[Exception]) -> None:
    store = _store(error)
    for call in (
        lambda: store.search(SPEC, QUERY, None),
        lambda: store.upsert("docs", [ChunkRow("c", "d", "t", {}, [1.0, 0.0])], None),
        lambda: store.count("docs"),
        lambda: store.describe("docs"),
        store.names,
    ):
        with pytest.raises(expected):
            call()


def test_other_milvus_errors_stay_unexpected() -> None:
    with pytest.raises(MilvusException):
        _store(MilvusException(code=1, message="disk full")).search(SPEC, QUERY, None)


def test_a_held_milvus_lite_lock_is_detected_and_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "store.db"
    assert claim_local_path(str(path)) == path  # parents are created, nothing holds it
    assert path.parent.is_dir()
    path.mkdir()
    fd = os.open(path / "LOCK", os.O_CREAT | os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what milvus-lite holds while open
        assert path_is_locked(path)
        with pytest.raises(StartupError, match="in use by another process"):
            claim_local_path(str(path))
        fcntl.flock(fd, fcntl.LOCK_UN)
        assert not path_is_locked(path)
    finally:
        os.close(fd)


def test_scores_are_higher_is_better() -> None:
    assert dense_score(Metric.L2, 4.0) < dense_score(Metric.L2, 1.0)
    assert dense_score(Metric.COSINE, 0.9) > dense_score(Metric.COSINE, 0.1)
    assert bm25_score(-2.5) == bm25_score(2.5) == 2.5  # milvus-lite negates BM25, a server does not


def _description(*fields: str) -> dict[str, Any]:
    return {"fields": [{"name": name, "params": {"dim": 8} if name == "vector" else {}} for name in fields]}


def test_a_layout_is_read_back_from_its_description() -> None:
    description = _description(
        "chunk_id", "document_id", "text", "metadata", "access", "access_terms", "vector", "sparse"
    )
    spec = spec_from_description("docs", description, {"metric_type": "IP", "index_type": "IVF_FLAT"})
    assert spec == CollectionSpec("docs", 8, Metric.IP, IndexKind.IVF_FLAT, full_text=True)
    legacy = spec_from_description(
        "old",
        _description("chunk_id", "document_id", "text", "metadata", "vector"),
        {"metric_type": "IP", "index_type": "FLAT"},
    )
    assert not legacy.access_lists and not legacy.full_text


@pytest.mark.parametrize(
    ("fields", "index", "message"),
    [
        (("id", "vector"), {"metric_type": "COSINE", "index_type": "HNSW"}, "lacks fields chunk_id"),
        (("chunk_id", "document_id", "text", "metadata", "vector"), None, "lacks a vector index"),
        (("chunk_id", "document_id", "text", "metadata", "vector"), {"metric_type": "HAMMING"}, "metric"),
        (
            ("chunk_id", "document_id", "text", "metadata", "vector"),
            {"metric_type": "L2", "index_type": "DISKANN"},
            "index",
        ),
    ],
)
def test_collections_made_elsewhere_are_a_failed_precondition(
    fields: tuple[str, ...], index: dict[str, Any] | None, message: str
) -> None:
    with pytest.raises(FailedPrecondition, match=message):
        spec_from_description("foreign", _description(*fields), index)
