"""The generated Envoy config, served by the real Envoy in front of fake gRPC replicas.

The public listener serves the orchestrator only; the components answer on the internal
listener (the orchestrator's). Routing per component, least-request spreading over replicas, health through the mesh,
reflection, trace headers, retries and health checks around a failed replica, and a
token stream longer than Envoy's default 15 s route timeout.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ragmesh.mesh.envoy_process import envoy_binary
from ragmesh.v1 import (
    common_pb2,
    embedder_pb2,
    embedder_pb2_grpc,
    generator_pb2,
    generator_pb2_grpc,
    orchestrator_pb2,
    orchestrator_pb2_grpc,
    retriever_pb2,
    retriever_pb2_grpc,
)
from tests.support.envoy_mesh import Mesh, running_mesh
from tests.support.fakes import FakeReplica

pytestmark = pytest.mark.integration

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


@pytest_asyncio.fixture(scope="module")
async def mesh(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Mesh]:
    """All four components (two embedders) behind one Envoy."""
    work = tmp_path_factory.mktemp("envoy-mesh")
    async with running_mesh(work, {"orchestrator": 1, "embedder": 2, "retriever": 1, "generator": 1}) as running:
        yield running


async def test_each_service_reaches_its_component(mesh: Mesh) -> None:
    async with grpc.aio.insecure_channel(mesh.internal_address) as channel:
        embedder = await embedder_pb2_grpc.EmbedderServiceStub(channel).Info(embedder_pb2.EmbedderInfoRequest())
        retriever = await retriever_pb2_grpc.RetrieverServiceStub(channel).ListCollections(
            retriever_pb2.ListCollectionsRequest()
        )
        generator = await generator_pb2_grpc.GeneratorServiceStub(channel).Info(generator_pb2.GeneratorInfoRequest())
        health = await orchestrator_pb2_grpc.OrchestratorServiceStub(channel).CheckHealth(
            orchestrator_pb2.CheckHealthRequest()
        )
    assert embedder.model_name in {"embedder-0", "embedder-1"}
    assert [c.name for c in retriever.collections] == ["retriever-0"]
    assert generator.model_name == "generator-0"
    assert health.all_serving
    assert mesh.replicas["orchestrator"][0].calls["CheckHealth"] == 1


async def connect_to_every_replica(
    stub: embedder_pb2_grpc.EmbedderServiceAsyncStub, replicas: list[FakeReplica]
) -> None:
    """Send ungated calls until each replica saw one, so that Envoy's worker serving this
    channel holds a connection to each: a call waiting for a new upstream connection is
    pending, not active, and least-request would count that replica as idle."""
    before = [r.calls["Embed"] for r in replicas]
    for _ in range(200):  # a fair coin misses one replica 200 times in a row with p = 2**-199
        if all(r.calls["Embed"] > b for r, b in zip(replicas, before, strict=True)):
            return
        await stub.Embed(embedder_pb2.EmbedRequest(texts=["warm-up"]))
    raise AssertionError(f"Envoy sent 200 calls without reaching every replica: {[r.calls for r in replicas]}")


async def test_a_burst_is_spread_over_both_replicas(mesh: Mesh) -> None:
    replicas = mesh.replicas["embedder"]
    gate = asyncio.Event()
    try:
        async with grpc.aio.insecure_channel(mesh.internal_address) as channel:
            stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
            await connect_to_every_replica(stub, replicas)
            before = [r.calls["Embed"] for r in replicas]
            for replica in replicas:  # every call stays in flight until all 40 arrived: least-request
                replica.gate = gate  # sees the true load at each pick, whatever the machine's speed
            # One client connection: without per-request balancing every call would land on one pod.
            burst = asyncio.gather(*(stub.Embed(embedder_pb2.EmbedRequest(texts=[f"t{i}"])) for i in range(40)))
            async with asyncio.timeout(60):
                while sum(r.calls["Embed"] for r in replicas) - sum(before) < 40:
                    await asyncio.sleep(0.01)
            gate.set()
            replies = await burst
    finally:
        gate.set()
        for replica in replicas:
            replica.gate = None
    assert all(len(r.embeddings) == 1 for r in replies)
    got = [r.calls["Embed"] - b for r, b in zip(replicas, before, strict=True)]
    assert sum(got) == 40
    assert min(got) >= 10, f"least-request should spread the burst, got {got}"


@pytest.mark.parametrize("component", ["orchestrator", "embedder", "retriever", "generator"])
async def test_health_through_envoy_per_component(mesh: Mesh, component: str) -> None:
    service = f"ragmesh.v1.{component.capitalize()}Service"
    async with grpc.aio.insecure_channel(mesh.internal_address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(
            health_pb2.HealthCheckRequest(service=service), metadata=(("x-ragmesh-component", component),)
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        other = "retriever" if component != "retriever" else "embedder"
        with pytest.raises(grpc.aio.AioRpcError) as wrong:
            # The other component does not know this service name: proves where it went.
            await stub.Check(health_pb2.HealthCheckRequest(service=service), metadata=(("x-ragmesh-component", other),))
        assert wrong.value.code() == grpc.StatusCode.NOT_FOUND


async def test_health_without_header_is_the_orchestrator_and_unknown_names_fail(mesh: Mesh) -> None:
    async with grpc.aio.insecure_channel(mesh.address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service="ragmesh.v1.OrchestratorService"))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        with pytest.raises(grpc.aio.AioRpcError) as unknown:
            await stub.Check(health_pb2.HealthCheckRequest(), metadata=(("x-ragmesh-component", "nope"),))
        assert unknown.value.code() == grpc.StatusCode.UNIMPLEMENTED


async def test_grpcurl_lists_services_through_envoy(mesh: Mesh) -> None:
    grpcurl = str(Path(envoy_binary()).parent / "grpcurl")

    def listing(address: str, *header: str) -> str:
        done = subprocess.run(
            [grpcurl, "-plaintext", *header, address, "list"], capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "ragmesh.v1.OrchestratorService" in await asyncio.to_thread(listing, mesh.address)
    embedder = await asyncio.to_thread(listing, mesh.internal_address, "-H", "x-ragmesh-component: embedder")
    assert "ragmesh.v1.EmbedderService" in embedder


async def test_the_public_listener_does_not_reach_the_components(mesh: Mesh) -> None:
    before = sum(sum(r.calls.values()) for c, group in mesh.replicas.items() if c != "orchestrator" for r in group)
    async with grpc.aio.insecure_channel(mesh.address) as channel:
        calls = [
            embedder_pb2_grpc.EmbedderServiceStub(channel).Info(embedder_pb2.EmbedderInfoRequest()),
            retriever_pb2_grpc.RetrieverServiceStub(channel).ListCollections(retriever_pb2.ListCollectionsRequest()),
            generator_pb2_grpc.GeneratorServiceStub(channel).Info(generator_pb2.GeneratorInfoRequest()),
            health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(), metadata=(("x-ragmesh-component", "embedder"),)
            ),
        ]
        for call in calls:
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await call
            assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
        stream = generator_pb2_grpc.GeneratorServiceStub(channel).Generate(generator_pb2.GenerateRequest())
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stream.read()
        assert refused.value.code() == grpc.StatusCode.UNIMPLEMENTED
    after = sum(sum(r.calls.values()) for c, group in mesh.replicas.items() if c != "orchestrator" for r in group)
    assert after == before, "no call reached a component"


async def test_traceparent_passes_through_untouched(mesh: Mesh) -> None:
    replica = mesh.replicas["retriever"][0]
    async with grpc.aio.insecure_channel(mesh.internal_address) as channel:
        await retriever_pb2_grpc.RetrieverServiceStub(channel).ListCollections(
            retriever_pb2.ListCollectionsRequest(), metadata=(("traceparent", TRACEPARENT),)
        )
    assert replica.metadata[-1]["traceparent"] == TRACEPARENT


@pytest.mark.slow
async def test_a_stream_longer_than_15_seconds_passes_intact(mesh: Mesh) -> None:
    """17 deltas, one a second: Envoy's default 15 s route timeout would cut it."""
    request = generator_pb2.GenerateRequest(
        messages=[common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content="long")],
        sampling=common_pb2.SamplingParams(max_new_tokens=17),
    )
    texts: list[str] = []
    final: generator_pb2.GenerateFinal | None = None
    async with grpc.aio.insecure_channel(mesh.internal_address) as channel:
        async for message in generator_pb2_grpc.GeneratorServiceStub(channel).Generate(request):
            if message.HasField("delta"):
                texts.append(message.delta.text)
            else:
                final = message.final
    assert texts == [f"t{i} " for i in range(17)]
    assert final is not None
    assert final.finish_reason == common_pb2.FINISH_REASON_LENGTH


async def _embed_many(address: str, count: int) -> list[embedder_pb2.EmbedResponse]:
    async with grpc.aio.insecure_channel(address) as channel:
        stub = embedder_pb2_grpc.EmbedderServiceStub(channel)
        return [await stub.Embed(embedder_pb2.EmbedRequest(texts=["x"])) for _ in range(count)]


async def test_a_not_serving_replica_gets_no_traffic(tmp_path: Path) -> None:
    async with running_mesh(tmp_path, {"embedder": 2}) as mesh:
        healthy, draining = mesh.replicas["embedder"]
        await draining.set_serving(False)
        await mesh.wait_health(draining, healthy=False)
        before = draining.calls["Embed"]
        replies = await _embed_many(mesh.internal_address, 20)
        assert len(replies) == 20
        assert draining.calls["Embed"] == before
        assert healthy.calls["Embed"] >= 20


async def test_unary_calls_survive_a_stopped_replica(tmp_path: Path) -> None:
    async with running_mesh(tmp_path, {"embedder": 2}) as mesh:
        survivor, stopped = mesh.replicas["embedder"]
        await _embed_many(mesh.internal_address, 10)  # warm connections to both
        await stopped.stop()
        # Straight away, before any health check noticed: retries go to the survivor.
        replies = await _embed_many(mesh.internal_address, 20)
        assert len(replies) == 20
        await mesh.wait_health(stopped, healthy=False)
        assert survivor.calls["Embed"] >= 20
