"""Fake replicas of the four services: raw-bytes gRPC handlers at the real method paths.

Each replica answers with serialized real response messages that name the replica, counts
the calls it got per method, and records the metadata it saw, so tests behind a real
Envoy can tell where every call went.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import grpc

from ragmesh.mesh.envoy import SERVICE_NAMES
from ragmesh.v1 import (
    common_pb2,
    embedder_pb2,
    generator_pb2,
    orchestrator_pb2,
    retriever_pb2,
)
from services.common.server import RunningServer
from services.common.tls import ServerTls
from tests.support.inprocess import generic_definition, start_in_process

Unary = Callable[[bytes, grpc.aio.ServicerContext], Any]


@dataclass
class FakeReplica:
    """One fake replica: its server, address, per-method call counts and metadata seen."""

    component: str
    name: str
    stream_interval: float = 1.0
    calls: Counter[str] = field(default_factory=Counter)
    metadata: list[dict[str, str]] = field(default_factory=list)
    server: RunningServer | None = None
    address: str = ""
    #: When set, Embed calls wait for it (a test holds a burst in flight, then releases it).
    gate: asyncio.Event | None = None

    @property
    def port(self) -> int:
        """The replica's gRPC port."""
        return int(self.address.rpartition(":")[2])

    def seen(self, method: str, context: grpc.aio.ServicerContext) -> None:
        """Count a call and keep its metadata."""
        self.calls[method] += 1
        self.metadata.append({k: str(v) for k, v in context.invocation_metadata() or ()})

    async def set_serving(self, serving: bool) -> None:
        """Flip this replica's health (Envoy's checks notice it)."""
        assert self.server is not None
        await self.server.health.set_serving(serving)

    async def stop(self) -> None:
        """Stop the server at once (connections refused from now on)."""
        if self.server is not None:
            await self.server.server.stop(0)


async def start_replica(
    component: str, name: str, stream_interval: float = 1.0, tls: ServerTls | None = None
) -> FakeReplica:
    """Start a fake ``component`` replica in this event loop (serving TLS/mTLS with ``tls``)."""
    replica = FakeReplica(component, name, stream_interval)
    handlers = _HANDLERS[component](replica)
    definition = generic_definition(component, SERVICE_NAMES[component], handlers)
    replica.server, replica.address = await start_in_process(definition, tls)
    return replica


def _unary(replica: FakeReplica, method: str, answer: Callable[[bytes], bytes]) -> grpc.RpcMethodHandler:
    async def handle(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        replica.seen(method, context)
        return answer(request)

    return grpc.unary_unary_rpc_method_handler(handle)


def _embedder(replica: FakeReplica) -> dict[str, grpc.RpcMethodHandler]:
    async def embed(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        replica.seen("Embed", context)
        texts = embedder_pb2.EmbedRequest.FromString(request).texts
        if replica.gate is not None:  # held until the test has seen the whole burst arrive
            await asyncio.wait_for(replica.gate.wait(), timeout=60)
        else:
            await asyncio.sleep(0.05)  # holds the request so that least-request sees it in flight
        vectors = [embedder_pb2.Embedding(values=[1.0, 0.0]) for _ in texts]
        return embedder_pb2.EmbedResponse(embeddings=vectors, dimension=2).SerializeToString()

    info = embedder_pb2.EmbedderInfoResponse(model_name=replica.name, dimension=2).SerializeToString()
    return {"Embed": grpc.unary_unary_rpc_method_handler(embed), "Info": _unary(replica, "Info", lambda _: info)}


def _retriever(replica: FakeReplica) -> dict[str, grpc.RpcMethodHandler]:
    listing = retriever_pb2.ListCollectionsResponse(collections=[retriever_pb2.CollectionInfo(name=replica.name)])
    return {"ListCollections": _unary(replica, "ListCollections", lambda _: listing.SerializeToString())}


def _generator(replica: FakeReplica) -> dict[str, grpc.RpcMethodHandler]:
    async def generate(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        replica.seen("Generate", context)
        count = generator_pb2.GenerateRequest.FromString(request).sampling.max_new_tokens
        for index in range(count):
            await asyncio.sleep(replica.stream_interval)
            delta = common_pb2.TextDelta(text=f"t{index} ", tokens=index + 1)
            yield generator_pb2.GenerateResponse(delta=delta).SerializeToString()
        final = generator_pb2.GenerateFinal(finish_reason=common_pb2.FINISH_REASON_LENGTH)
        yield generator_pb2.GenerateResponse(final=final).SerializeToString()

    info = generator_pb2.GeneratorInfoResponse(model_name=replica.name).SerializeToString()
    return {
        "Generate": grpc.unary_stream_rpc_method_handler(generate),
        "Info": _unary(replica, "Info", lambda _: info),
    }


def _orchestrator(replica: FakeReplica) -> dict[str, grpc.RpcMethodHandler]:
    source = orchestrator_pb2.Source(number=1, chunk_id="doc-1#0", document_id="doc-1", text="Envoy balances.")

    async def query(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        replica.seen("Query", context)
        parsed = orchestrator_pb2.QueryRequest.FromString(request)
        if not parsed.query:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "query must not be empty")
        answer = f"{replica.name}: {parsed.query} (top_k={parsed.top_k}) [1]"
        return orchestrator_pb2.QueryResponse(
            answer=answer, sources=[source], cache=orchestrator_pb2.CACHE_LEVEL_L1, trace_id="0" * 32
        ).SerializeToString()

    async def query_stream(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        replica.seen("QueryStream", context)
        sources = orchestrator_pb2.QuerySources(sources=[source])
        yield orchestrator_pb2.QueryStreamResponse(sources=sources).SerializeToString()
        for index, word in enumerate(["Envoy ", "balances ", "[1]"]):
            delta = common_pb2.TextDelta(text=word, tokens=index + 1)
            yield orchestrator_pb2.QueryStreamResponse(delta=delta).SerializeToString()
        final = orchestrator_pb2.QueryFinal(finish_reason=common_pb2.FINISH_REASON_EOS)
        yield orchestrator_pb2.QueryStreamResponse(final=final).SerializeToString()

    async def ingest(requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
        replica.seen("Ingest", context)
        total = 0
        async for raw in requests:
            total += len(orchestrator_pb2.IngestRequest.FromString(raw).documents)
            yield orchestrator_pb2.IngestProgress(documents_total=total, documents_done=total).SerializeToString()
        last = orchestrator_pb2.IngestProgress(documents_total=total, documents_done=total, done=True)
        yield last.SerializeToString()

    health = orchestrator_pb2.CheckHealthResponse(
        components=[orchestrator_pb2.ComponentHealth(component="embedder", status="SERVING", address="envoy")],
        all_serving=True,
    ).SerializeToString()
    return {
        "Query": grpc.unary_unary_rpc_method_handler(query),
        "QueryStream": grpc.unary_stream_rpc_method_handler(query_stream),
        "Ingest": grpc.stream_stream_rpc_method_handler(ingest),
        "CheckHealth": _unary(replica, "CheckHealth", lambda _: health),
    }


_HANDLERS: dict[str, Callable[[FakeReplica], dict[str, grpc.RpcMethodHandler]]] = {
    "embedder": _embedder,
    "retriever": _retriever,
    "generator": _generator,
    "orchestrator": _orchestrator,
}
