"""Faults on loopback, bounded: overload of the real generator (more concurrent streams
than it admits) and a retriever that goes away and comes back behind a running orchestrator."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import grpc
import pytest

from ragmesh.mesh.processes import ServiceProcess
from ragmesh.v1 import common_pb2, generator_pb2, generator_pb2_grpc, orchestrator_pb2, orchestrator_pb2_grpc
from tests.conftest import GENERATOR_TEST_LIMITS
from tests.support.metrics import until_metrics
from tests.support.redis_server import RedisServer
from tests.support.stack import start_orchestrator, unique_collection

pytestmark = pytest.mark.integration

ADMITTED = int(GENERATOR_TEST_LIMITS["RAGMESH_GENERATOR_MAX_BATCH_SIZE"]) + int(
    GENERATOR_TEST_LIMITS["RAGMESH_GENERATOR_MAX_WAITING"]
)
EXCESS = 4
IDLE = {"ragmesh_generator_sequences_in_flight": 0.0, "ragmesh_generator_sequences_waiting": 0.0}


def _long_request() -> generator_pb2.GenerateRequest:
    # Far more tokens than can be decoded while the burst arrives: the admitted streams hold their slots.
    return generator_pb2.GenerateRequest(
        messages=[common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content="Count from one to a thousand.")],
        sampling=common_pb2.SamplingParams(max_new_tokens=256, temperature=0.0),
    )


async def _first_event(stub: generator_pb2_grpc.GeneratorServiceStub) -> tuple[grpc.StatusCode, float, object]:
    """(code of the stream's first event, seconds it took, the open call)."""
    started = time.perf_counter()
    call = stub.Generate(_long_request(), timeout=120)
    try:
        await call.read()  # type: ignore[attr-defined]
    except grpc.aio.AioRpcError as error:
        return error.code(), time.perf_counter() - started, call
    return grpc.StatusCode.OK, time.perf_counter() - started, call


async def _burst(stub: generator_pb2_grpc.GeneratorServiceStub) -> list[float]:
    """More streams than admitted at once: check the codes, cancel everything, return the
    rejections' latencies (seconds)."""
    running = int(GENERATOR_TEST_LIMITS["RAGMESH_GENERATOR_MAX_BATCH_SIZE"])
    tasks = [asyncio.ensure_future(_first_event(stub)) for _ in range(ADMITTED + EXCESS)]
    finished: list[tuple[grpc.StatusCode, float, object]] = []
    # The running streams send a first delta, the excess is rejected; the queued ones
    # stay silent until a batch slot frees (256 tokens later), so stop waiting there.
    for next_done in asyncio.as_completed(tasks):
        finished.append(await next_done)
        if len(finished) == running + EXCESS:
            break
    codes = [code for code, _, _ in finished]
    rejected = [seconds for code, seconds, _ in finished if code == grpc.StatusCode.RESOURCE_EXHAUSTED]
    assert len(rejected) == EXCESS, codes
    assert codes.count(grpc.StatusCode.OK) == running, codes
    queued = [task for task in tasks if not task.done()]
    assert len(queued) == ADMITTED - running
    for task in queued:
        task.cancel()
    for _, _, call in finished:
        call.cancel()  # type: ignore[attr-defined]
    await asyncio.gather(*queued, return_exceptions=True)
    return rejected


def _resident_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmRSS for pid {pid}")


async def test_streams_beyond_the_generator_admission_get_resource_exhausted_then_service_resumes(
    generator_service: ServiceProcess,
) -> None:
    pid = generator_service.process.pid
    async with grpc.aio.insecure_channel(generator_service.address) as channel:
        stub = generator_pb2_grpc.GeneratorServiceStub(channel)
        async with asyncio.timeout(300):
            await until_metrics(generator_service.metrics_port, IDLE)  # the session's generator is shared
            rejected = await _burst(stub)  # the first burst also warms the allocator up
            after_first = _resident_mib(pid)
            for _ in range(2):
                # The cancelled streams free their slots asynchronously: wait until they have.
                await until_metrics(generator_service.metrics_port, IDLE)
                rejected += await _burst(stub)
            growth = _resident_mib(pid) - after_first
            print(
                f"overload: {3 * EXCESS} rejected, slowest {max(rejected) * 1000:.0f} ms, RSS growth {growth:.0f} MiB"
            )
            # Rejected and cancelled streams leave nothing behind (a leak would grow each burst).
            assert growth < 64, f"the generator grew {growth:.0f} MiB over two more bursts"
            reply = await stub.GenerateText(
                generator_pb2.GenerateRequest(
                    messages=[common_pb2.ChatMessage(role=common_pb2.ROLE_USER, content="Say hi.")],
                    sampling=common_pb2.SamplingParams(max_new_tokens=2),
                ),
                timeout=120,
            )
            assert reply.final.usage.completion_tokens >= 1


def _retriever(log_dir: Path, data: Path, port: int) -> ServiceProcess:
    env = {"RAGMESH_RETRIEVER_URI": str(data), "RAGMESH_RETRIEVER_ADDR": f"127.0.0.1:{port}"}
    service = ServiceProcess("retriever", env, log_dir)
    service.wait_serving()
    return service


def _query(stub: orchestrator_pb2_grpc.OrchestratorServiceStub, collection: str) -> orchestrator_pb2.QueryResponse:
    request = orchestrator_pb2.QueryRequest(
        query="what is in the mesh",
        collection=collection,
        options=orchestrator_pb2.QueryOptions(retrieval_only=True, bypass_cache=True),
    )
    return stub.Query(request, timeout=20)


def test_a_retriever_that_goes_away_is_unavailable_not_a_hang_and_comes_back(
    log_dir: Path, tmp_path: Path, embedder_service: ServiceProcess, generator_service: ServiceProcess
) -> None:
    from ragmesh.mesh.processes import free_port

    port, data = free_port(), tmp_path / "milvus.db"
    retriever = _retriever(log_dir, data, port)
    orchestrator = start_orchestrator(log_dir, embedder_service, retriever, generator_service)
    collection = unique_collection()
    try:
        with grpc.insecure_channel(orchestrator.address) as channel:
            stub = orchestrator_pb2_grpc.OrchestratorServiceStub(channel)
            document = orchestrator_pb2.Document(id="kept", text="the mesh keeps what it acknowledged")
            list(stub.Ingest(iter([orchestrator_pb2.IngestRequest(collection=collection, documents=[document])])))
            assert [s.document_id for s in _query(stub, collection).sources] == ["kept"]
            retriever.terminate()
            started = time.perf_counter()
            with pytest.raises(grpc.RpcError) as caught:
                _query(stub, collection)
            assert caught.value.code() == grpc.StatusCode.UNAVAILABLE, caught.value.details()
            print(f"retriever down: UNAVAILABLE after {(time.perf_counter() - started) * 1000:.0f} ms")
            retriever = _retriever(log_dir, data, port)
            # The channel reconnects on its own (bounded: each attempt has a 20 s deadline).
            for attempt in range(20):
                try:
                    sources = _query(stub, collection).sources
                    break
                except grpc.RpcError as error:
                    failure = error.code()
                    assert (failure, attempt < 19) == (grpc.StatusCode.UNAVAILABLE, True), "never recovered"
                    time.sleep(0.25)
            assert [s.document_id for s in sources] == ["kept"]  # acknowledged data survived
    finally:
        orchestrator.terminate()
        retriever.terminate()


def test_answers_continue_while_redis_is_down_and_l2_is_used_again_once_it_is_back(
    log_dir: Path,
    redis_server: RedisServer,
    embedder_service: ServiceProcess,
    retriever_service: ServiceProcess,
    generator_service: ServiceProcess,
) -> None:
    extra = {
        "RAGMESH_ORCHESTRATOR_REDIS_URL": redis_server.url,
        "RAGMESH_ORCHESTRATOR_REDIS_TIMEOUT_MS": "500",
        "RAGMESH_ORCHESTRATOR_REDIS_BACKOFF_SECONDS": "0",
    }
    orchestrator = start_orchestrator(log_dir, embedder_service, retriever_service, generator_service, extra)
    collection = unique_collection()
    try:
        with grpc.insecure_channel(orchestrator.address) as channel:
            stub = orchestrator_pb2_grpc.OrchestratorServiceStub(channel)
            document = orchestrator_pb2.Document(id="cached", text="the cache has two levels")
            list(stub.Ingest(iter([orchestrator_pb2.IngestRequest(collection=collection, documents=[document])])))
            redis_server.stop()
            latencies = []
            for _ in range(5):
                started = time.perf_counter()
                assert [s.document_id for s in _query(stub, collection).sources] == ["cached"]
                latencies.append(time.perf_counter() - started)
            stats = stub.GetStats(orchestrator_pb2.GetStatsRequest(), timeout=10)
            assert stats.cache.l2_errors >= 1
            print(f"redis down: p50 of retrieval-only queries {sorted(latencies)[2] * 1000:.0f} ms")
            redis_server.start()  # same port: the orchestrator's client reconnects by itself
            errors_before = stub.GetStats(orchestrator_pb2.GetStatsRequest(), timeout=10).cache.l2_errors
            request = orchestrator_pb2.QueryRequest(
                query="how many levels has the cache",
                collection=collection,
                options=orchestrator_pb2.QueryOptions(retrieval_only=True),
            )
            stub.Query(request, timeout=20)
            after = stub.GetStats(orchestrator_pb2.GetStatsRequest(), timeout=10).cache
            assert after.l2_errors == errors_before, "Redis is back, yet L2 calls still fail"
    finally:
        orchestrator.terminate()
