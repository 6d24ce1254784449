"""Orchestrator state across replicas, through real processes: the two-level cache (L1,
L2 from another replica, Redis stopped mid-test) and ingestion jobs (bad documents
reported, a job outliving the replica that ran it)."""

from __future__ import annotations

import time
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


def test_an_ingestion_job_reports_bad_documents_and_indexes_the_rest(
    orchestrator: ServiceProcess, retriever_service: ServiceProcess
) -> None:
    collection = unique_collection()
    documents: list[dict[str, object]] = [
        {"id": f"doc-{i}", "text": f"Document {i} talks about subject {i % 7}. " * 30} for i in range(40)
    ]
    documents += [
        {"id": "empty", "text": "   "},
        {"id": "doc-3", "text": "a duplicate id"},
        {"id": "bad-meta", "text": "fine text", "metadata": {"bad key!": 1}},
        {"id": "", "text": "no id"},
    ]
    with client_of(orchestrator) as client:
        job_id = client.submit_job(documents, collection)
        states = list(client.watch_job(job_id))
    final = states[-1]
    assert final.state == 3, final.error  # SUCCEEDED
    assert (final.progress.documents_done, final.progress.documents_failed) == (40, 4)
    assert {e.document_id for e in final.progress.errors} == {"empty", "doc-3", "bad-meta", "#43"}
    assert _count(retriever_service, collection) == final.progress.chunks_done > 40


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


def test_a_job_survives_the_death_of_the_replica_running_it(
    log_dir: Path,
    redis_server: RedisServer,
    embedder_service: ServiceProcess,
    retriever_service: ServiceProcess,
    generator_service: ServiceProcess,
) -> None:
    extra = {"RAGMESH_ORCHESTRATOR_REDIS_URL": redis_server.url, "RAGMESH_ORCHESTRATOR_JOB_LEASE_SECONDS": "2"}
    collection = unique_collection()
    words = " ".join(f"word{i}" for i in range(300))
    documents = [{"id": f"big-{i}", "text": f"Document {i}. {words}"} for i in range(240)]
    components = (embedder_service, retriever_service, generator_service)
    with orchestrator_replicas(log_dir, components, extra) as replicas:
        with client_of(replicas[0]) as client:
            job_id = client.submit_job(documents, collection)
            job = client.job(job_id)
            while job.progress.documents_done == 0:  # running, part of it stored
                time.sleep(0.05)
                job = client.job(job_id)
        runner = next(r for r in replicas if f":{r.process.pid}:" in job.runner)
        survivor = next(r for r in replicas if r is not runner)
        runner.process.kill()  # no clean hand-over: its lease simply lapses
        with client_of(survivor) as client:
            final = list(client.watch_job(job_id))[-1]
            reference = client.ingest(documents, f"{collection}_ref")  # the same documents, in one go
    assert final.state == 3, final.error  # SUCCEEDED
    assert final.attempts == 2 and f":{survivor.process.pid}:" in final.runner
    assert final.progress.documents_done == 240
    assert _count(retriever_service, collection) == reference.chunks_done  # no chunk lost or stored twice
