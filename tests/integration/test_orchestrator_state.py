"""Orchestrator state across replicas, through real processes: the two-level cache (L1,
L2 from another replica, Redis stopped mid-test). Ingestion jobs run on the worker
component now: see test_worker.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ragmesh.client import files
from ragmesh.mesh.processes import ROOT, ServiceProcess
from ragmesh.v1 import retriever_pb2, retriever_pb2_grpc
from tests.support.redis_server import RedisServer
from tests.support.stack import client_of, orchestrator_replicas, unique_collection

pytestmark = pytest.mark.integration
ANSWER_TOKENS = 24


def _count(retriever: ServiceProcess, collection: str) -> int:
    with grpc.insecure_channel(retriever.address) as channel:
        info = retriever_pb2_grpc.RetrieverServiceStub(channel).DescribeCollection(
            retriever_pb2.DescribeCollectionRequest(name=collection)
        )
    return int(info.collection.count)


class TestTwoLevelCache:
    """L1, L2 from a second replica, and Redis stopped mid-test."""

    @pytest.fixture
    def replicas(
        self,
        log_dir: Path,
        redis_server: RedisServer,
        embedder_service: ServiceProcess,
        retriever_service: ServiceProcess,
        generator_service: ServiceProcess,
    ) -> Iterator[tuple[ServiceProcess, ServiceProcess]]:
        extra = {"RAGMESH_ORCHESTRATOR_REDIS_URL": redis_server.url, "RAGMESH_ORCHESTRATOR_REDIS_BACKOFF_SECONDS": "0"}
        components = (embedder_service, retriever_service, generator_service)
        with orchestrator_replicas(log_dir, components, extra) as (first, second):
            yield first, second

    def test_l1_then_l2_from_another_replica_then_redis_down(
        self, replicas: tuple[ServiceProcess, ServiceProcess], redis_server: RedisServer
    ) -> None:
        first, second = replicas
        collection = unique_collection()
        question = "Which library is the in-process LRU cache built on?"
        with client_of(first) as one, client_of(second) as two:
            one.ingest(files.load([ROOT / "corpus" / "docs" / "cache.md"]).documents, collection)
            fresh = one.query(question, collection, max_new_tokens=ANSWER_TOKENS)
            again = one.query(question, collection, max_new_tokens=ANSWER_TOKENS)
            shared = two.query(question, collection, max_new_tokens=ANSWER_TOKENS)
            redis_server.stop()
            after_l1 = two.query(question, collection, max_new_tokens=ANSWER_TOKENS)
            other = two.query("What does every cache key include?", collection, max_new_tokens=ANSWER_TOKENS)
            stats = two.stats()
        assert [fresh.cache, again.cache, shared.cache, after_l1.cache] == ["none", "l1", "l2", "l1"]
        assert fresh.text == again.text == shared.text == after_l1.text
        assert again.timings_ms["embed"] == 0  # a hit runs no pipeline stage
        assert other.cache == "none" and other.text  # Redis down: the pipeline still answers
        assert stats.cache.l2_errors >= 1 and stats.cache.l2_enabled
        assert stats.cache.l1_hits >= 1 and stats.cache.l2_hits == 1
        # Replica two generated one answer ("other"): its streamed Generate call is counted too.
        calls = {c.component: c.requests for c in stats.components}
        assert calls["generator"] >= 1 and calls["embedder"] >= 1 and calls["retriever"] >= 1
