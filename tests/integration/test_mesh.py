"""The whole mesh as `ragmesh up` starts it: real Envoy, two embedder replicas, the real
retriever, generator and orchestrator — used through the CLI, the Python client, plain
HTTP/JSON and raw gRPC, then shut down with Ctrl-C leaving nothing behind."""

from __future__ import annotations

import concurrent.futures
import json
import socket
import time
import urllib.request
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry import trace

from ragmesh.client import AsyncRagmeshClient, DoneEvent, RagmeshClient, SourcesEvent, TokenEvent
from ragmesh.mesh.traces import SpanRecord, read_spans
from ragmesh.v1 import embedder_pb2, embedder_pb2_grpc
from ragmesh.vocabulary.names import SERVICE_NAMES
from tests.support.mesh_cli import UpProcess, run_cli
from tests.support.metrics import scrape, value

pytestmark = pytest.mark.integration
COMPONENTS = ("orchestrator", "embedder", "retriever", "generator")


def test_up_started_every_replica_and_the_demo_streamed_an_answer(mesh: UpProcess) -> None:
    assert {name: len(replicas) for name, replicas in mesh.replicas.items()} == {
        "retriever": 1,
        "embedder": 2,
        "generator": 2,
        "orchestrator": 2,
        "worker": 2,
    }
    output = "\n".join(mesh.lines)
    assert "indexed 8 of 8 documents" in output
    assert "[1] " in output  # numbered sources after the streamed answer
    assert f"clients: {mesh.address}" in output


def test_every_component_is_healthy_through_envoy(mesh: UpProcess) -> None:
    result = run_cli("--address", mesh.address, "health")
    assert result.returncode == 0, result.stdout + result.stderr
    for name in COMPONENTS:
        assert f"{name}" in result.stdout
    assert result.stdout.count("SERVING") == 4
    with grpc.insecure_channel(mesh.internal_address) as channel:  # the components' listener
        stub = health_pb2_grpc.HealthStub(channel)
        for name, service in SERVICE_NAMES.items():
            reply = stub.Check(
                health_pb2.HealthCheckRequest(service=service), metadata=(("x-ragmesh-component", name),), timeout=5
            )
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    with grpc.insecure_channel(mesh.address) as channel:  # the public one serves the orchestrator only
        with pytest.raises(grpc.RpcError) as refused:
            embedder_pb2_grpc.EmbedderServiceStub(channel).Info(embedder_pb2.EmbedderInfoRequest(), timeout=5)
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED


def test_cli_ingest_and_ask_with_exit_codes(mesh: UpProcess, tmp_path: Path) -> None:
    (tmp_path / "falcon.md").write_text("# Falcon\n\nThe falcon project was started by Grace Hopper in 1952.\n")
    (tmp_path / "more.jsonl").write_text(
        json.dumps({"id": "owl", "text": "The owl project ships every Friday.", "metadata": {"team": "night"}})
        + "\n{broken json\n"
        + json.dumps({"id": "empty", "text": " "})
        + "\n"
    )
    partial = run_cli("--address", mesh.address, "ingest", "-c", "cli_docs", str(tmp_path))
    assert partial.returncode == 1  # one document rejected, one line unreadable
    assert "rejected empty" in partial.stderr and "not JSON" in partial.stderr
    assert "indexed 2 of 3 documents" in partial.stderr
    clean = run_cli("--address", mesh.address, "ingest", "-c", "cli_docs", str(tmp_path / "falcon.md"))
    assert clean.returncode == 0, clean.stderr
    answer = run_cli("--address", mesh.address, "ask", "-c", "cli_docs", "Who started the falcon project?")
    assert answer.returncode == 0, answer.stderr
    assert "Hopper" in answer.stdout and "Sources:" in answer.stdout and "falcon.md" in answer.stdout
    listed = run_cli("--address", mesh.address, "collections")
    assert "cli_docs" in listed.stdout and listed.returncode == 0


def test_cli_usage_help_and_unreachable_exit_codes(mesh: UpProcess) -> None:
    for args in (["--help"], ["ask", "--help"], ["ingest", "--help"], ["up", "--help"], ["job", "status", "--help"]):
        shown = run_cli(*args)
        assert shown.returncode == 0 and "Usage:" in shown.stdout
    assert run_cli("ask").returncode == 2  # missing QUESTION
    assert run_cli("ask", "--rerank", "sideways", "q").returncode == 2
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        nowhere = f"127.0.0.1:{closed.getsockname()[1]}"
    unreachable = run_cli("--address", nowhere, "--timeout", "3", "ask", "q")
    assert unreachable.returncode == 3 and "UNAVAILABLE" in unreachable.stderr


def test_python_client_unary_and_stream_agree(mesh: UpProcess) -> None:
    question = "How many dimensions do the embedder's vectors have?"
    with RagmeshClient(mesh.address) as client:
        answer = client.query(question, "ragmesh_docs", max_new_tokens=24)
        streamed = "".join(
            e.text
            for e in client.query_stream(question, "ragmesh_docs", max_new_tokens=24)
            if isinstance(e, TokenEvent)
        )
    assert streamed == answer.text
    assert "embedder.md" in [s.document_id for s in answer.sources]


async def test_async_client_streams_and_ingests_with_progress(mesh: UpProcess) -> None:
    seen: list[int] = []
    documents = [{"id": f"async-{i}", "text": f"Async document {i} says the answer is {i * 11}."} for i in range(70)]
    async with AsyncRagmeshClient(mesh.address, caller_id="async-test") as client:
        final = await client.ingest(documents, "async_docs", on_progress=lambda p: seen.append(p.documents_done))
        events = [
            e async for e in client.query_stream("What does async document 3 say?", "async_docs", max_new_tokens=8)
        ]
        answer = await client.query("What does async document 3 say?", "async_docs", max_new_tokens=8)
    assert final.documents_done == 70 and final.errors == []
    assert len(seen) >= 2 and seen[-1] == 70  # progress arrived as groups were stored
    assert isinstance(events[0], SourcesEvent) and isinstance(events[-1], DoneEvent)
    assert "".join(e.text for e in events if isinstance(e, TokenEvent)) == answer.text
    # A hit: in the memory of the replica that streamed it, or in Redis when Envoy chose the other one.
    assert answer.cache in {"l1", "l2"}


def test_http_json_surface_through_envoy(mesh: UpProcess) -> None:
    body = json.dumps(
        {
            "query": "What is the default generator model?",
            "collection": "ragmesh_docs",
            "options": {"sampling": {"max_new_tokens": 16}},
        }
    ).encode()
    request = urllib.request.Request(
        f"http://{mesh.address}/query", data=body, headers={"content-type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        answer = json.loads(response.read())
    assert answer["answer"] and answer["sources"][0]["document_id"].endswith(".md")
    with urllib.request.urlopen(f"http://{mesh.address}/health", timeout=30) as response:
        health = json.loads(response.read())
    assert health["all_serving"] is True


def test_a_burst_of_calls_is_spread_across_both_embedders(mesh: UpProcess) -> None:
    replicas = mesh.replicas["embedder"]
    before = [value(scrape(port), "ragmesh_rpc_requests_total", method="Embed") for _, port in replicas]
    with grpc.insecure_channel(mesh.internal_address) as channel:  # one HTTP/2 connection to Envoy
        stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: stub.Embed(embedder_pb2.EmbedRequest(texts=[f"text {i}"]), timeout=60), range(64)))
    served = [
        value(scrape(port), "ragmesh_rpc_requests_total", method="Embed") - b
        for (_, port), b in zip(replicas, before, strict=True)
    ]
    assert sum(served) == 64
    assert min(served) >= 8, served  # a plain connection would pin all 64 to one replica


def test_every_service_exposes_its_metrics(mesh: UpProcess) -> None:
    # Every orchestrator replica generates an answer (asked directly, cache bypassed): through
    # Envoy one of them could answer from the cache another test filled, and count no tokens.
    for address, _ in mesh.replicas["orchestrator"]:
        with RagmeshClient(address) as client:
            client.query("What is the answer cache?", "ragmesh_docs", max_new_tokens=8, bypass_cache=True)
    expected = {
        "orchestrator": [
            "ragmesh_queries_total",
            "ragmesh_orchestrator_stage_seconds_count",
            "ragmesh_cache_lookups_total",
            "ragmesh_llm_tokens_total",
            "ragmesh_orchestrator_time_to_first_token_seconds_count",
            "ragmesh_orchestrator_sources_returned_count",
        ],
        "embedder": ["ragmesh_embedder_batch_size_count", "ragmesh_embedder_queued_texts"],
        "retriever": [
            "ragmesh_retriever_search_seconds_count",
            "ragmesh_retriever_rows_upserted_total",
            "ragmesh_retriever_collection_rows",
        ],
        "generator": [
            "ragmesh_generator_time_to_first_token_seconds_count",
            "ragmesh_generator_inter_token_latency_seconds_count",
            "ragmesh_generator_tokens_total",
            "ragmesh_generator_batch_size_count",
            "ragmesh_generator_sequences_in_flight",
            "ragmesh_generator_sequences_waiting",
        ],
    }
    for name, metrics in expected.items():
        for _, port in mesh.replicas[name]:
            samples = scrape(port)
            for metric in ["ragmesh_rpc_requests_total", "ragmesh_rpc_duration_seconds_count", *metrics]:
                assert any(key[0] == metric for key in samples), f"{name} lacks {metric}"
            assert any(key[0] == "ragmesh_rpc_in_flight" for key in samples)


QUERY_CALLS = [
    ("embed", "ragmesh.v1.EmbedderService/Embed", "ragmesh-embedder"),
    ("search", "ragmesh.v1.RetrieverService/Search", "ragmesh-retriever"),
    ("prompt.build", "ragmesh.v1.GeneratorService/CountTokens", "ragmesh-generator"),
    ("generate", "ragmesh.v1.GeneratorService/Generate", "ragmesh-generator"),
]
INGEST_CALLS = [
    ("ragmesh.v1.EmbedderService/Tokenize", "ragmesh-embedder"),
    ("ragmesh.v1.EmbedderService/Embed", "ragmesh-embedder"),
    ("ragmesh.v1.RetrieverService/Upsert", "ragmesh-retriever"),
]


def _spans_of(mesh: UpProcess, trace_id: str, wanted: set[tuple[str, str]]) -> list[SpanRecord]:
    """The trace's spans from the mesh's span file, once every wanted (name, service) is
    there (services export in batches, each on its own schedule: poll)."""
    spans: list[SpanRecord] = []
    for _ in range(150):
        if mesh.traces_file.exists():
            spans = [s for s in read_spans(mesh.traces_file) if s.trace_id == trace_id]
            if wanted <= {(s.name, s.service) for s in spans}:
                break
        time.sleep(0.2)
    return spans


def _child(spans: list[SpanRecord], parent: SpanRecord, name: str, service: str | None = None) -> SpanRecord:
    matches = [s for s in spans if s.parent_id == parent.span_id and s.name == name]
    matches = [s for s in matches if service is None or s.service == service]
    assert matches, f"no {name} under {parent.name}: {[(s.name, s.service, s.parent_id) for s in spans]}"
    return matches[0]


def test_one_streamed_query_is_one_trace_across_all_four_services(mesh: UpProcess) -> None:
    with (
        trace.get_tracer("test").start_as_current_span("client-request") as root,
        RagmeshClient(mesh.address) as client,
    ):
        list(client.query_stream("Which port does Envoy use?", "ragmesh_docs", max_new_tokens=8, rerank="mmr"))
    trace_id = format(root.get_span_context().trace_id, "032x")
    wanted = {(call, service) for _, call, service in QUERY_CALLS}
    spans = _spans_of(mesh, trace_id, wanted | {("ragmesh.v1.OrchestratorService/QueryStream", "ragmesh-orchestrator")})
    server = next(s for s in spans if s.name == "ragmesh.v1.OrchestratorService/QueryStream")
    assert server.parent_id == format(root.get_span_context().span_id, "016x")
    assert server.service == "ragmesh-orchestrator" and server.kind == "SERVER"
    assert server.attributes["ragmesh.collection"] == "ragmesh_docs"
    for stage, call, service in QUERY_CALLS:
        step = _child(spans, server, stage)
        outgoing = _child(spans, step, call, "ragmesh-orchestrator")
        remote = _child(spans, outgoing, call, service)
        assert remote.kind == "SERVER"
    _child(spans, server, "cache.lookup")
    _child(spans, server, "rerank")


def test_an_ingestion_is_one_trace_too(mesh: UpProcess) -> None:
    with trace.get_tracer("test").start_as_current_span("client-ingest") as root, RagmeshClient(mesh.address) as client:
        client.ingest([{"id": "traced", "text": "A traced document about tracing."}], "traced_docs")
    wanted = {*INGEST_CALLS, ("ragmesh.v1.OrchestratorService/Ingest", "ragmesh-orchestrator")}
    spans = _spans_of(mesh, format(root.get_span_context().trace_id, "032x"), wanted)
    server = next(s for s in spans if s.name == "ragmesh.v1.OrchestratorService/Ingest")
    group = _child(spans, server, "ingest.group")
    for call, service in INGEST_CALLS:
        _child(spans, _child(spans, group, call, "ragmesh-orchestrator"), call, service)
