"""The Envoy preStop drain: health fails at once, a stream in flight still finishes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from ragmesh.mesh.envoy_drain import active_requests, drain
from ragmesh.v1 import common_pb2, generator_pb2, generator_pb2_grpc
from tests.support.envoy_mesh import running_mesh

pytestmark = pytest.mark.integration


async def test_drain_lets_the_stream_in_flight_finish(tmp_path: Path) -> None:
    async with running_mesh(tmp_path, {"generator": 1}, stream_interval=0.2) as mesh:
        port = mesh.envoy.admin_port
        request = generator_pb2.GenerateRequest(sampling=common_pb2.SamplingParams(max_new_tokens=10))
        async with grpc.aio.insecure_channel(mesh.internal_address) as channel:
            call = generator_pb2_grpc.GeneratorServiceStub(channel).Generate(request)
            first = await call.read()
            assert isinstance(first, generator_pb2.GenerateResponse)
            assert await asyncio.to_thread(active_requests, port) == 1
            draining = asyncio.create_task(asyncio.to_thread(drain, port, 0.0, 60.0, 0.1))
            rest: list[generator_pb2.GenerateResponse] = []
            while isinstance(message := await call.read(), generator_pb2.GenerateResponse):
                rest.append(message)  # read() returns grpc.aio.EOF at the end
            remaining = await draining
        assert remaining == 0
        assert len(rest) == 10  # 9 more deltas and the final message
        assert rest[-1].HasField("final")
        status, _ = await asyncio.to_thread(mesh.envoy.admin, "/ready")
        assert status == 503
