"""Requests protobuf cannot parse (invalid UTF-8 in a string, a Struct nested past the
parser's limit) are INVALID_ARGUMENT naming the message type — in unary and streaming
calls, through the shared server plumbing — and the server keeps serving."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest

from ragmesh.v1 import orchestrator_pb2
from services.common.grpc_errors import ErrorInterceptor
from tests.support.inprocess import generic_definition, start_in_process

SERVICE = "ragmesh.v1.OrchestratorService"
#: QueryRequest.query (field 1, a string) holding bytes that are not UTF-8.
BAD_UTF8 = b"\x0a\x02\xff\xfe"


def _length(payload: bytes) -> bytes:
    size, out = len(payload), b""
    while True:
        byte = size & 0x7F
        size >>= 7
        out += bytes([byte | (0x80 if size else 0)])
        if not size:
            return out + payload


async def _echo(request: orchestrator_pb2.QueryRequest, context: Any) -> orchestrator_pb2.QueryResponse:
    return orchestrator_pb2.QueryResponse(answer=request.query)


async def _count(requests: AsyncIterator[orchestrator_pb2.IngestRequest], context: Any) -> AsyncIterator[Any]:
    async for request in requests:
        yield orchestrator_pb2.IngestProgress(documents_total=len(request.documents))


@pytest.fixture
async def address() -> AsyncIterator[str]:
    handlers = {
        "Query": grpc.unary_unary_rpc_method_handler(
            _echo,
            request_deserializer=orchestrator_pb2.QueryRequest.FromString,
            response_serializer=orchestrator_pb2.QueryResponse.SerializeToString,
        ),
        "Ingest": grpc.stream_stream_rpc_method_handler(
            _count,
            request_deserializer=orchestrator_pb2.IngestRequest.FromString,
            response_serializer=orchestrator_pb2.IngestProgress.SerializeToString,
        ),
    }
    server, address = await start_in_process(
        generic_definition("orchestrator", SERVICE, handlers, interceptors=[ErrorInterceptor()])
    )
    yield address
    await server.stop(0)


async def test_invalid_utf8_in_a_unary_request_is_invalid_argument(address: str) -> None:
    async with grpc.aio.insecure_channel(address) as channel:
        query = channel.unary_unary(
            f"/{SERVICE}/Query",
            request_serializer=None,
            response_deserializer=orchestrator_pb2.QueryResponse.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await query(BAD_UTF8)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert "not a valid ragmesh.v1.QueryRequest message" in (caught.value.details() or "")
        good = await query(orchestrator_pb2.QueryRequest(query="still serving").SerializeToString())
        assert good.answer == "still serving"


async def test_a_bad_message_in_a_stream_ends_it_with_invalid_argument_after_the_good_ones(address: str) -> None:
    good = orchestrator_pb2.IngestRequest(documents=[orchestrator_pb2.Document(id="a", text="x")]).SerializeToString()
    async with grpc.aio.insecure_channel(address) as channel:
        ingest = channel.stream_stream(
            f"/{SERVICE}/Ingest",
            request_serializer=None,
            response_deserializer=orchestrator_pb2.IngestProgress.FromString,
        )
        call = ingest(iter([good, b"\x12\x04\x0a\x02\xff\xfe"]))  # a Document whose id is not UTF-8
        replies: list[orchestrator_pb2.IngestProgress] = []

        async def read_all() -> None:
            async for reply in call:
                replies.append(reply)

        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await read_all()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert [r.documents_total for r in replies] == [1]  # the message before the bad one was handled
        assert "ragmesh.v1.IngestRequest" in (caught.value.details() or "")


async def test_a_struct_nested_past_the_parser_limit_is_invalid_argument(address: str) -> None:
    value = b"\x1a\x00"  # an empty Struct value, then wrapped in Structs 200 levels deep
    for _ in range(200):
        entry = b"\x0a\x01k\x12" + _length(value)  # map entry {"k": value}
        value = b"\x2a" + _length(b"\x0a" + _length(entry))  # Value{struct_value: Struct{fields: entry}}
    document = b"\x0a\x01d\x12\x01t\x1a" + _length(b"\x0a" + _length(b"\x0a\x01k\x12" + _length(value)))
    request = b"\x12" + _length(document)  # IngestRequest.documents
    async with grpc.aio.insecure_channel(address) as channel:
        ingest = channel.stream_stream(
            f"/{SERVICE}/Ingest",
            request_serializer=None,
            response_deserializer=orchestrator_pb2.IngestProgress.FromString,
        )
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await ingest(iter([request])).read()
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
