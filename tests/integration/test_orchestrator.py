"""The orchestrator end to end through real services: the real embedder (MiniLM), a real
retriever on milvus-lite, the real generator (SmolLM2), and Redis for the shared cache."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ragmesh.client import DoneEvent, RagmeshClient, RagmeshError, SourcesEvent, TokenEvent, files, where
from ragmesh.mesh.processes import ROOT, ServiceProcess, health_status
from ragmesh.v1 import retriever_pb2, retriever_pb2_grpc
from services.orchestrator.rerank import CrossEncoder
from tests.support.metrics import scrape, value
from tests.support.redis_server import RedisServer
from tests.support.stack import client_of, start_orchestrator
from tests.support.tiny_cross_encoder import save_tiny_cross_encoder

pytestmark = pytest.mark.integration
ANSWER_TOKENS = 24


def _collection() -> str:
    return f"t_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="module")
def orchestrator(
    log_dir: Path,
    embedder_service: ServiceProcess,
    retriever_service: ServiceProcess,
    generator_service: ServiceProcess,
) -> Iterator[ServiceProcess]:
    service = start_orchestrator(log_dir, embedder_service, retriever_service, generator_service)
    yield service
    service.terminate()


@pytest.fixture(scope="module")
def docs_collection(orchestrator: ServiceProcess) -> str:
    """The sample corpus, indexed once for this module."""
    collection = _collection()
    with client_of(orchestrator) as client:
        final = client.ingest(files.load([ROOT / "corpus" / "docs"]).documents, collection)
    assert final.errors == [] and final.documents_done == 8
    return collection


def _ask(client: RagmeshClient, question: str, collection: str, **options: object) -> str:
    return client.query(question, collection, max_new_tokens=ANSWER_TOKENS, **options).text  # type: ignore[arg-type]


def test_a_grounded_answer_cites_the_document_and_stream_agrees(
    orchestrator: ServiceProcess, docs_collection: str
) -> None:
    question = "What is the default embedding model?"
    with client_of(orchestrator) as client:
        answer = client.query(question, docs_collection, top_k=3, max_new_tokens=ANSWER_TOKENS)
        events = list(client.query_stream(question, docs_collection, top_k=3, max_new_tokens=ANSWER_TOKENS))
    assert "MiniLM" in answer.text
    assert answer.sources[0].document_id == "embedder.md"
    assert [s.number for s in answer.sources] == list(range(1, len(answer.sources) + 1))
    assert answer.usage.completion_tokens > 0 and answer.cache == "none"
    assert len(answer.trace_id) == 32
    assert all(answer.timings_ms[stage] > 0 for stage in ("embed", "search", "prompt", "generate", "total"))
    assert isinstance(events[0], SourcesEvent) and isinstance(events[-1], DoneEvent)
    streamed = "".join(e.text for e in events if isinstance(e, TokenEvent))
    assert streamed == answer.text
    assert events[0].cache == "l1"  # the same question again: served from the cache, still streamed
    assert [s.chunk_id for s in events[0].sources] == [s.chunk_id for s in answer.sources]


def test_a_fresh_stream_matches_the_unary_answer(orchestrator: ServiceProcess, docs_collection: str) -> None:
    question = "How many dimensions do the embedder's vectors have?"
    with client_of(orchestrator) as client:
        answer = client.query(question, docs_collection, max_new_tokens=ANSWER_TOKENS)
        client.delete_documents(["no-such-doc"], docs_collection)  # bumps the version: no cache hit
        events = list(client.query_stream(question, docs_collection, max_new_tokens=ANSWER_TOKENS))
    assert events[0].cache == "none"  # type: ignore[union-attr]
    assert "".join(e.text for e in events if isinstance(e, TokenEvent)) == answer.text
    assert events[-1].usage.completion_tokens > 0  # type: ignore[union-attr]


def test_filters_restrict_the_sources(orchestrator: ServiceProcess) -> None:
    collection = _collection()
    documents = [
        {
            "id": f"{topic}-{i}",
            "text": f"Note {i} about {topic}: the {topic} team meets on day {i}.",
            "metadata": {"topic": topic, "n": i},
        }
        for topic in ("cache", "envoy")
        for i in range(3)
    ]
    with client_of(orchestrator) as client:
        client.ingest(documents, collection)
        answer = client.query(
            "When does the team meet?", collection, top_k=5, filters=[where("topic", "==", "cache")], max_new_tokens=4
        )
        ranged = client.query(
            "When does the team meet?", collection, top_k=5, filters=[where("n", ">=", 2)], max_new_tokens=4
        )
    assert {s.metadata["topic"] for s in answer.sources} == {"cache"}
    assert {s.document_id for s in ranged.sources} == {"cache-2", "envoy-2"}


def test_mmr_drops_a_near_duplicate(orchestrator: ServiceProcess) -> None:
    collection = _collection()
    text = "The generator streams tokens to the caller as soon as they are decoded."
    documents = [
        {"id": "original", "text": text},
        {"id": "copy", "text": text.replace("caller", "client")},
        {"id": "other", "text": "Streams of generated tokens can be cancelled by the caller at any time."},
        {"id": "unrelated", "text": "Milvus stores vectors on disk."},
    ]
    question = "How does the generator stream tokens to the caller?"
    with client_of(orchestrator) as client:
        client.ingest(documents, collection)
        plain = client.query(question, collection, top_k=2, rerank="none", max_new_tokens=4)
        diverse = client.query(question, collection, top_k=2, rerank="mmr", mmr_lambda=0.5, max_new_tokens=4)
    assert {s.document_id for s in plain.sources} == {"original", "copy"}
    assert len({"original", "copy"} & {s.document_id for s in diverse.sources}) == 1


def test_reingesting_a_changed_document_changes_the_answer(orchestrator: ServiceProcess) -> None:
    collection = _collection()
    question = "What is the name of the project's mascot?"
    with client_of(orchestrator) as client:
        client.ingest([{"id": "mascot", "text": "The project's mascot is a penguin named Pingo."}], collection)
        first = client.query(question, collection, max_new_tokens=ANSWER_TOKENS)
        client.ingest([{"id": "mascot", "text": "The project's mascot is an owl named Hootie."}], collection)
        second = client.query(question, collection, max_new_tokens=ANSWER_TOKENS)
    assert "Pingo" in first.text
    assert second.cache == "none"
    assert "Hootie" in second.text and "Pingo" not in second.text
    assert [s.text for s in second.sources] == ["The project's mascot is an owl named Hootie."]


def test_nothing_relevant_says_so(orchestrator: ServiceProcess) -> None:
    collection = _collection()
    with client_of(orchestrator) as client:
        client.ingest([{"id": "a", "text": "Bananas are yellow.", "metadata": {"lang": "en"}}], collection)
        answer = client.query("Why is the sky blue?", collection, filters=[where("lang", "==", "fr")])
    assert answer.sources == []
    assert "could not find" in answer.text


def test_cancelling_a_stream_stops_the_generation(
    orchestrator: ServiceProcess, generator_service: ServiceProcess, docs_collection: str
) -> None:
    with client_of(orchestrator) as client:
        stream = client.query_stream("Describe every component in detail.", docs_collection, max_new_tokens=400)
        tokens = 0
        for event in stream:
            tokens += isinstance(event, TokenEvent)
            if tokens == 3:
                break
        stream.close()  # the client leaves: its finally cancels the call
    in_flight = None
    for _ in range(100):
        samples = scrape(generator_service.metrics_port)
        in_flight = value(samples, "ragmesh_rpc_in_flight", component="generator", method="Generate")
        if in_flight == 0:
            break
        time.sleep(0.1)
    assert in_flight == 0


def test_a_short_deadline_is_deadline_exceeded_and_frees_the_generator(
    orchestrator: ServiceProcess, generator_service: ServiceProcess, docs_collection: str
) -> None:
    with client_of(orchestrator, timeout=1.5) as client, pytest.raises(RagmeshError) as caught:
        client.query("Describe every component in detail.", docs_collection, max_new_tokens=400)
    assert caught.value.code == "DEADLINE_EXCEEDED"
    for _ in range(100):
        if value(scrape(generator_service.metrics_port), "ragmesh_rpc_in_flight", method="Generate") == 0:
            break
        time.sleep(0.1)
    assert value(scrape(generator_service.metrics_port), "ragmesh_rpc_in_flight", method="Generate") == 0


def test_cross_encoder_reranking_orders_sources_by_its_scores(
    log_dir: Path,
    tmp_path: Path,
    embedder_service: ServiceProcess,
    retriever_service: ServiceProcess,
    generator_service: ServiceProcess,
) -> None:
    model = save_tiny_cross_encoder(tmp_path / "cross-encoder")
    service = start_orchestrator(
        log_dir,
        embedder_service,
        retriever_service,
        generator_service,
        {"RAGMESH_ORCHESTRATOR_CROSS_ENCODER_PATH": str(model)},
    )
    collection = _collection()
    documents = [{"id": f"d{i}", "text": f"Passage {i} mentions the ragmesh retriever {i} times."} for i in range(8)]
    question = "How often is the retriever mentioned?"
    try:
        with client_of(service) as client:
            client.ingest(documents, collection)
            plain = client.query(question, collection, top_k=5, rerank="none", retrieval_only=True)
            reranked = client.query(
                question, collection, top_k=5, rerank="cross_encoder", candidates=8, retrieval_only=True
            )
    finally:
        service.terminate()
    expected = CrossEncoder(str(model)).scores(question, [s.text for s in reranked.sources])
    assert [s.score for s in reranked.sources] == pytest.approx(expected, abs=1e-4)
    assert [s.score for s in reranked.sources] == sorted((s.score for s in reranked.sources), reverse=True)
    assert [s.document_id for s in reranked.sources] != [s.document_id for s in plain.sources]


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda c: c.query("", "docs"), "INVALID_ARGUMENT"),
        (lambda c: c.query("q", "bad name!"), "INVALID_ARGUMENT"),
        (lambda c: c.query("q", "no_such_collection_here"), "NOT_FOUND"),
        (lambda c: c.query("q", "docs", rerank="cross_encoder"), "FAILED_PRECONDITION"),
        (lambda c: c.query("q", "docs", top_k=99), "INVALID_ARGUMENT"),
        (lambda c: c.job("no-such-job"), "NOT_FOUND"),
        (lambda c: c.delete_documents([], "docs"), "INVALID_ARGUMENT"),
        (lambda c: c.ingest([{"id": "x", "text": "y"}], "bad name!"), "INVALID_ARGUMENT"),
    ],
)
def test_bad_requests_get_precise_codes_and_the_service_stays_serving(
    orchestrator: ServiceProcess, docs_collection: str, call: object, code: str
) -> None:
    with client_of(orchestrator) as client, pytest.raises(RagmeshError) as caught:
        call(client)  # type: ignore[operator]
    assert caught.value.code == code
    assert caught.value.details
    assert health_status(orchestrator.address, "ragmesh.v1.OrchestratorService") == "SERVING"


def test_an_ingestion_job_reports_bad_documents_and_indexes_the_rest(
    orchestrator: ServiceProcess, retriever_service: ServiceProcess
) -> None:
    collection = _collection()
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
    with grpc.insecure_channel(retriever_service.address) as channel:
        info = retriever_pb2_grpc.RetrieverServiceStub(channel).DescribeCollection(
            retriever_pb2.DescribeCollectionRequest(name=collection)
        )
    assert info.collection.count == final.progress.chunks_done > 40


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
        first = start_orchestrator(log_dir, embedder_service, retriever_service, generator_service, extra)
        second = start_orchestrator(log_dir, embedder_service, retriever_service, generator_service, extra)
        yield first, second
        first.terminate()
        second.terminate()

    def test_l1_then_l2_from_another_replica_then_redis_down(
        self, replicas: tuple[ServiceProcess, ServiceProcess], redis_server: RedisServer
    ) -> None:
        first, second = replicas
        collection = _collection()
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


def test_a_job_survives_the_death_of_the_replica_running_it(
    log_dir: Path,
    redis_server: RedisServer,
    embedder_service: ServiceProcess,
    retriever_service: ServiceProcess,
    generator_service: ServiceProcess,
) -> None:
    extra = {"RAGMESH_ORCHESTRATOR_REDIS_URL": redis_server.url, "RAGMESH_ORCHESTRATOR_JOB_LEASE_SECONDS": "2"}
    replicas = [
        start_orchestrator(log_dir, embedder_service, retriever_service, generator_service, extra) for _ in range(2)
    ]
    collection = _collection()
    words = " ".join(f"word{i}" for i in range(300))
    documents = [{"id": f"big-{i}", "text": f"Document {i}. {words}"} for i in range(240)]
    try:
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
    finally:
        for replica in replicas:
            replica.terminate()
    assert final.state == 3, final.error  # SUCCEEDED
    assert final.attempts == 2 and f":{survivor.process.pid}:" in final.runner
    assert final.progress.documents_done == 240
    with grpc.insecure_channel(retriever_service.address) as channel:
        info = retriever_pb2_grpc.RetrieverServiceStub(channel).DescribeCollection(
            retriever_pb2.DescribeCollectionRequest(name=collection)
        )
    assert info.collection.count == reference.chunks_done  # no chunk lost or stored twice
