"""The orchestrator end to end through real services: the real embedder (MiniLM), a real
retriever on milvus-lite, the real generator (SmolLM2), and Redis for the shared cache."""

from __future__ import annotations

import concurrent.futures
from pathlib import Path

import pytest

from ragmesh.client import DoneEvent, RagmeshClient, RagmeshError, SourcesEvent, TokenEvent, files, where
from ragmesh.mesh.processes import ROOT, ServiceProcess, health_status
from services.orchestrator.adapters.models.cross_encoder import CrossEncoder
from tests.support.metrics import scrape, value, wait_for_metrics
from tests.support.stack import client_of, start_orchestrator, unique_collection

pytestmark = pytest.mark.integration
ANSWER_TOKENS = 24


@pytest.fixture(scope="module")
def docs_collection(orchestrator: ServiceProcess) -> str:
    """The sample corpus, indexed once for this module."""
    collection = unique_collection()
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
    collection = unique_collection()
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
    collection = unique_collection()
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
    collection = unique_collection()
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


def test_reingesting_a_shorter_document_leaves_only_its_new_chunks(orchestrator: ServiceProcess) -> None:
    collection = unique_collection()
    long_text = " ".join(f"Sentence number {i} of the long version talks about owls." for i in range(40))
    with client_of(orchestrator) as client:
        first = client.ingest([{"id": "doc", "text": long_text}, {"id": "other", "text": "Penguins."}], collection)
        second = client.ingest([{"id": "doc", "text": "The short version talks about owls."}], collection)
        (summary,) = [c for c in client.collections() if c.name == collection]
        sources = client.query("owls", collection, top_k=5, retrieval_only=True).sources
    assert first.chunks_done > 2 and second.chunks_done == 1
    assert summary.chunks == 2  # doc's one new chunk and the other document's, no stale ones
    assert sorted(s.text for s in sources) == ["Penguins.", "The short version talks about owls."]


def test_nothing_relevant_says_so(orchestrator: ServiceProcess) -> None:
    collection = unique_collection()
    with client_of(orchestrator) as client:
        client.ingest([{"id": "a", "text": "Bananas are yellow.", "metadata": {"lang": "en"}}], collection)
        answer = client.query("Why is the sky blue?", collection, filters=[where("lang", "==", "fr")])
    assert answer.sources == []
    assert "could not find" in answer.text


def test_cancelling_a_stream_stops_the_generation(
    orchestrator: ServiceProcess, generator_service: ServiceProcess, docs_collection: str
) -> None:
    cancelled = "ragmesh_generator_finished_total"
    before = value(scrape(generator_service.metrics_port), cancelled, reason="cancelled")
    with client_of(orchestrator) as client:
        stream = client.query_stream(
            "Describe every component in detail.", docs_collection, max_new_tokens=400, bypass_cache=True
        )
        tokens = 0
        for event in stream:
            tokens += isinstance(event, TokenEvent)
            if tokens == 3:
                break
        stream.close()  # the client leaves: its finally cancels the call
    # The generator itself saw the cancellation (not merely the call ending): the sequence
    # left the batch as cancelled, long before its 400 tokens.
    wait_for_metrics(generator_service.metrics_port, {cancelled: before + 1}, reason="cancelled")
    wait_for_metrics(
        generator_service.metrics_port, {"ragmesh_rpc_in_flight": 0}, component="generator", method="Generate"
    )


def test_a_short_deadline_is_deadline_exceeded_and_frees_the_generator(
    orchestrator: ServiceProcess, generator_service: ServiceProcess, docs_collection: str
) -> None:
    with client_of(orchestrator, timeout=1.5) as client, pytest.raises(RagmeshError) as caught:
        client.query("Describe every component in detail.", docs_collection, max_new_tokens=400)
    assert caught.value.code == "DEADLINE_EXCEEDED"
    wait_for_metrics(generator_service.metrics_port, {"ragmesh_rpc_in_flight": 0}, method="Generate")


def test_cross_encoder_reranking_orders_sources_by_its_scores(
    log_dir: Path,
    tiny_cross_encoder_dir: Path,
    embedder_service: ServiceProcess,
    retriever_service: ServiceProcess,
    generator_service: ServiceProcess,
) -> None:
    model = tiny_cross_encoder_dir
    service = start_orchestrator(
        log_dir,
        embedder_service,
        retriever_service,
        generator_service,
        {"RAGMESH_ORCHESTRATOR_CROSS_ENCODER_PATH": str(model)},
    )
    collection = unique_collection()
    documents = [{"id": f"d{i}", "text": f"Passage {i} mentions the ragmesh retriever {i} times."} for i in range(8)]
    question = "How often is the retriever mentioned?"
    try:
        with client_of(service) as client:
            client.ingest(documents, collection)
            plain = client.query(question, collection, top_k=5, rerank="none", retrieval_only=True)
            reranked = client.query(
                question, collection, top_k=5, rerank="cross_encoder", candidates=8, retrieval_only=True
            )

            def rerank(i: int) -> int:  # concurrent queries share one tokenizer and model
                options = {"rerank": "cross_encoder", "candidates": 8, "retrieval_only": True, "bypass_cache": True}
                return len(client.query(f"{question} ({i})", collection, top_k=5, **options).sources)

            with concurrent.futures.ThreadPoolExecutor(8) as pool:
                assert list(pool.map(rerank, range(16))) == [5] * 16
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
        (lambda c: c.job("no-such-job"), "FAILED_PRECONDITION"),  # no Redis here: no task engine
        (lambda c: c.submit_batch([{"query": "q"}]), "FAILED_PRECONDITION"),
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


def test_a_collections_documents_are_listed_and_read_in_order(
    orchestrator: ServiceProcess, docs_collection: str
) -> None:
    with client_of(orchestrator) as client:
        first = client.documents(docs_collection, page_size=3)
        rest = client.documents(docs_collection, page_size=10, page_token=first.next_page_token)
        named = client.documents(docs_collection, name_contains="EMBED")
        document = client.document("embedder.md", docs_collection)
        with pytest.raises(RagmeshError) as missing:
            client.document("no-such-document", docs_collection)
    listed = [d.document_id for d in [*first.documents, *rest.documents]]
    assert len(first.documents) == 3 and first.next_page_token and rest.next_page_token == ""
    assert listed == sorted(listed) and len(listed) == 8
    assert [d.document_id for d in named.documents] == ["embedder.md"]
    assert (
        document.source
        and document.chunks
        and [c.chunk_id for c in document.chunks] == sorted(c.chunk_id for c in document.chunks)
    )
    assert "MiniLM" in " ".join(c.text for c in document.chunks)
    assert missing.value.code == "NOT_FOUND" and "no-such-document" in missing.value.details
