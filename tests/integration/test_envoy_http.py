"""The HTTP/JSON surface (Envoy's gRPC-JSON transcoder) and Envoy's own OpenTelemetry spans.

A plain HTTP client (urllib) talks JSON to Envoy; a fake orchestrator answers in gRPC.
"""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2

from services.common.server import RunningServer
from tests.support.envoy_mesh import Mesh, running_mesh
from tests.support.inprocess import generic_definition, start_in_process

pytestmark = pytest.mark.integration

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"


@pytest_asyncio.fixture(scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    """One fake orchestrator behind Envoy with the transcoder on."""
    api = await asyncio.start_server(_http_api, "127.0.0.1", 0)
    port = api.sockets[0].getsockname()[1]
    async with api, running_mesh(tmp_path_factory.mktemp("envoy-http"), {"orchestrator": 1}, http_port=port) as running:
        yield running


async def _http_api(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """A stand-in for the orchestrator's HTTP API: answers with the path and headers it got."""
    async with asyncio.timeout(10):
        head = (await reader.readuntil(b"\r\n\r\n")).decode()
    request_line, *lines = head.strip().split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    body = json.dumps({"request": request_line, "authorization": headers.get("authorization", "")}).encode()
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body))
    writer.write(body)
    await writer.drain()
    writer.close()


async def http(url: str, body: str | None = None, headers: dict[str, str] | None = None) -> tuple[int, str, str]:
    """(status, content type, body) of a GET, or of a POST when ``body`` is given."""

    def call() -> tuple[int, str, str]:
        data = None if body is None else body.encode()
        sent = {"content-type": "application/json", **(headers or {})}
        request = urllib.request.Request(url, data=data, headers=sent)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers.get("content-type", ""), response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.headers.get("content-type", ""), error.read().decode()

    return await asyncio.to_thread(call)


async def test_v1_goes_to_the_orchestrators_http_api(mesh: Mesh) -> None:
    status, kind, body = await http(f"http://{mesh.address}/v1/models", headers={"authorization": "Bearer k"})
    assert (status, kind) == (200, "application/json")
    assert json.loads(body) == {"request": "GET /v1/models HTTP/1.1", "authorization": "Bearer k"}


async def test_post_query_answers_json_with_proto_field_names(mesh: Mesh) -> None:
    status, kind, body = await http(f"http://{mesh.address}/query", json.dumps({"query": "what balances?", "top_k": 3}))
    assert (status, kind) == (200, "application/json")
    answer = json.loads(body)
    assert answer["answer"] == "orchestrator-0: what balances? (top_k=3) [1]"
    assert answer["sources"][0]["chunk_id"] == "doc-1#0"
    assert answer["cache"] == "CACHE_LEVEL_L1"  # enums by name
    assert answer["experiment_variant"] == ""  # zero values printed


async def test_post_query_accepts_lower_camel_too(mesh: Mesh) -> None:
    status, _, body = await http(f"http://{mesh.address}/query", json.dumps({"query": "q", "topK": 4}))
    assert status == 200
    assert "(top_k=4)" in json.loads(body)["answer"]


async def test_grpc_errors_become_http_statuses(mesh: Mesh) -> None:
    status, kind, body = await http(f"http://{mesh.address}/query", json.dumps({"query": ""}))
    assert (status, kind) == (400, "application/json")
    assert json.loads(body)["message"] == "query must not be empty"


async def test_get_health(mesh: Mesh) -> None:
    status, _, body = await http(f"http://{mesh.address}/health")
    assert status == 200
    assert json.loads(body) == {
        "components": [{"component": "embedder", "status": "SERVING", "address": "envoy", "detail": ""}],
        "all_serving": True,
    }


async def test_query_stream_is_newline_delimited_json(mesh: Mesh) -> None:
    status, _, body = await http(f"http://{mesh.address}/query/stream", json.dumps({"query": "q"}))
    assert status == 200
    events = [json.loads(line) for line in body.splitlines()]
    assert [next(iter(e)) for e in events] == ["sources", "delta", "delta", "delta", "final"]
    assert "".join(e["delta"]["text"] for e in events if "delta" in e) == "Envoy balances [1]"
    assert events[-1]["final"]["finish_reason"] == "FINISH_REASON_EOS"


async def test_index_takes_an_array_of_batches_and_streams_progress(mesh: Mesh) -> None:
    batches = [
        {"collection": "docs", "documents": [{"id": "a", "text": "x"}]},
        {"documents": [{"id": "b", "text": "y"}, {"id": "c", "text": "z", "metadata": {"lang": "en"}}]},
    ]
    status, _, body = await http(f"http://{mesh.address}/index", json.dumps(batches))
    assert status == 200
    progress = [json.loads(line) for line in body.splitlines()]
    assert [p["documents_done"] for p in progress] == [1, 3, 3]
    assert progress[-1]["done"] is True


async def test_unknown_paths_are_404(mesh: Mesh) -> None:
    status, _, _ = await http(f"http://{mesh.address}/nothing")
    assert status == 404


async def _fake_collector() -> tuple[RunningServer, str, list[trace_service_pb2.ExportTraceServiceRequest]]:
    exports: list[trace_service_pb2.ExportTraceServiceRequest] = []

    async def export(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        exports.append(trace_service_pb2.ExportTraceServiceRequest.FromString(request))
        return trace_service_pb2.ExportTraceServiceResponse().SerializeToString()

    handlers = {"Export": grpc.unary_unary_rpc_method_handler(export)}
    definition = generic_definition("collector", "opentelemetry.proto.collector.trace.v1.TraceService", handlers)
    server, address = await start_in_process(definition)
    return server, address, exports


async def test_envoy_exports_its_span_in_the_callers_trace(tmp_path: Path) -> None:
    collector, address, exports = await _fake_collector()
    try:
        async with running_mesh(tmp_path, {"orchestrator": 1}, otlp_endpoint=address) as mesh:
            traceparent = f"00-{TRACE_ID}-00f067aa0ba902b7-01"
            status, _, _ = await http(f"http://{mesh.address}/health", headers={"traceparent": traceparent})
            assert status == 200
            seen = mesh.replicas["orchestrator"][0].metadata[-1]["traceparent"]
            # Same trace, Envoy's span as the parent of the orchestrator's.
            assert seen.split("-")[1] == TRACE_ID
            assert seen.split("-")[2] != "00f067aa0ba902b7"
            for _ in range(300):  # Envoy flushes its spans every few seconds
                if exports:
                    break
                await asyncio.sleep(0.1)
        spans = [s for e in exports for r in e.resource_spans for ss in r.scope_spans for s in ss.spans]
        assert any(s.trace_id.hex() == TRACE_ID for s in spans), spans
    finally:
        await collector.stop(0)
