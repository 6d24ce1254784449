"""Python client of ragmesh: how internal services call the orchestrator.

    from ragmesh.client import RagmeshClient

    with RagmeshClient("127.0.0.1:8080") as client:
        client.ingest([{"id": "a", "text": "ragmesh streams answers."}], collection="docs")
        for event in client.query_stream("What does ragmesh stream?", collection="docs"):
            ...

``AsyncRagmeshClient`` has the same methods as coroutines / async iterators.
"""

from ragmesh.client.aio import AsyncRagmeshClient
from ragmesh.client.base import ClientSettings, RagmeshError
from ragmesh.client.filters import where
from ragmesh.client.sync import RagmeshClient
from ragmesh.client.types import (
    Answer,
    Document,
    DoneEvent,
    IngestProgress,
    Source,
    SourcesEvent,
    StreamEvent,
    TokenEvent,
    Usage,
)

__all__ = [
    "Answer",
    "AsyncRagmeshClient",
    "ClientSettings",
    "Document",
    "DoneEvent",
    "IngestProgress",
    "RagmeshClient",
    "RagmeshError",
    "Source",
    "SourcesEvent",
    "StreamEvent",
    "TokenEvent",
    "Usage",
    "where",
]
