"""Helpers for retriever tests: stubs, chunks, collections with unique names."""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import grpc

from ragmesh.client.filters import scalar
from ragmesh.v1 import common_pb2, retriever_pb2, retriever_pb2_grpc

_names = itertools.count()
Stub = retriever_pb2_grpc.RetrieverServiceStub


@contextmanager
def retriever_stub(address: str) -> Iterator[Stub]:
    """A blocking stub on a fresh channel (64 MiB messages, like the services)."""
    options = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
    with grpc.insecure_channel(address, options=options) as channel:
        yield retriever_pb2_grpc.RetrieverServiceStub(channel)


def unique_name(prefix: str) -> str:
    """A collection name no other test uses."""
    return f"{prefix}_{next(_names)}"


def angle(steps: float, dimension: int = 8) -> list[float]:
    """Unit vector ``steps`` tenths of a radian from axis 0 towards axis 1."""
    return [math.cos(steps / 10), math.sin(steps / 10)] + [0.0] * (dimension - 2)


def chunk(chunk_id: str, document_id: str, text: str, vector: Sequence[float], **metadata: Any) -> common_pb2.Chunk:
    """A chunk with metadata from keyword arguments."""
    result = common_pb2.Chunk(chunk_id=chunk_id, document_id=document_id, text=text, vector=vector)
    if metadata:
        result.metadata.update(metadata)
    return result


def create(stub: Stub, name: str, dimension: int, **options: Any) -> retriever_pb2.CollectionInfo:
    """Create a collection and return its info."""
    request = retriever_pb2.CreateCollectionRequest(name=name, dimension=dimension, **options)
    return stub.CreateCollection(request).collection


def search(stub: Stub, collection: str, vector: Sequence[float] = (), **options: Any) -> retriever_pb2.SearchResponse:
    """Search with top_k 10 unless given."""
    options.setdefault("top_k", 10)
    return stub.Search(retriever_pb2.SearchRequest(collection=collection, vector=vector, **options))


def hit_ids(response: retriever_pb2.SearchResponse) -> list[str]:
    """Chunk ids of the hits, best first."""
    return [hit.chunk_id for hit in response.hits]


def where(field: str, op: str, value: Any = None, values: Sequence[Any] = ()) -> common_pb2.Filter:
    """A filter clause: ``where("year", "GE", 2020)``, ``where("lang", "IN", values=["en"])``."""
    clause = common_pb2.Filter(field=field, op=common_pb2.FilterOp.Value(f"FILTER_OP_{op}"))
    if value is not None:
        clause.value.CopyFrom(scalar(value))
    clause.values.extend(scalar(v) for v in values)
    return clause
