"""Raw gRPC calls for reliability tests: any method by its full name, with a request
given as a message or as bytes (so a test can send what protobuf would never build),
and hand-encoded protobuf wire bytes for requests the Python API cannot produce."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import grpc
from google.protobuf.message import Message

from ragmesh.mesh.processes import health_status

#: Large enough for the "huge" requests the tables send (the services accept 64 MiB).
CHANNEL_OPTIONS = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
Request = Message | bytes


@dataclass(frozen=True)
class Outcome:
    """How a call ended: its status code, its details and the responses received."""

    code: grpc.StatusCode
    details: str
    responses: tuple[bytes, ...] = ()


def _bytes(request: Request) -> bytes:
    return request if isinstance(request, bytes) else request.SerializeToString()


def call(
    channel: grpc.Channel, method: str, request: Request | Sequence[Request], shape: str, timeout: float = 60.0
) -> Outcome:
    """Call ``method`` ("/pkg.Service/Method") shaped "unary", "stream" (server streaming)
    or "bidi" (``request`` is then a list of messages); the raw responses are kept."""
    try:
        if shape == "unary":
            unary = channel.unary_unary(method, request_serializer=None, response_deserializer=None)
            return Outcome(grpc.StatusCode.OK, "", (unary(_bytes(request), timeout=timeout),))  # type: ignore[arg-type]
        if shape == "stream":
            server = channel.unary_stream(method, request_serializer=None, response_deserializer=None)
            return Outcome(grpc.StatusCode.OK, "", tuple(server(_bytes(request), timeout=timeout)))  # type: ignore[arg-type,unused-ignore]
        bidi = channel.stream_stream(method, request_serializer=None, response_deserializer=None)
        messages = [_bytes(r) for r in request]  # type: ignore[union-attr,arg-type]
        return Outcome(grpc.StatusCode.OK, "", tuple(bidi(iter(messages), timeout=timeout)))
    except grpc.RpcError as error:
        return Outcome(error.code(), error.details() or "")


def _varint(number: int) -> bytes:
    out = b""
    while True:
        byte = number & 0x7F
        number >>= 7
        out += bytes([byte | (0x80 if number else 0)])
        if not number:
            return out


def length_delimited(field: int, payload: bytes) -> bytes:
    """One length-delimited field (wire type 2) of a protobuf message."""
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def nested_struct(depth: int) -> bytes:
    """A google.protobuf.Struct ``{"a": {"a": ... }}`` nested ``depth`` levels deep, as
    bytes (Struct.fields is field 1, a map entry of key 1 and Value 2; Value.struct_value
    is field 5) — past the parser's recursion limit for depth above 100 or so."""
    struct = b""
    for _ in range(depth):
        value = length_delimited(5, struct)
        struct = length_delimited(1, length_delimited(1, b"a") + length_delimited(2, value))
    return struct


def all_serving(addresses: Sequence[str]) -> dict[str, str]:
    """The health status of every address (an address that does not answer is "UNREACHABLE")."""
    return {address: health_status(address) for address in addresses}
