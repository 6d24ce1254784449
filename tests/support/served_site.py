"""An orchestrator over fake ports (and an in-memory job store) behind a real HTTP server with
the whole HTTP surface (``/v1``, ``/mcp``, ``/ui/``), two keys of tenant ``acme`` (one
read-only) and two documents in ``acme_docs``: for the MCP and documents API unit tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

from ragmesh.vocabulary.keys import Grant, digest, env_entry
from services.common.auth import AuthSettings, security_interceptor
from services.common.quota import QuotaSettings
from services.common.slot import BackendSlot
from services.orchestrator.config import CoreConfig
from services.orchestrator.core.deadline import Deadline
from services.orchestrator.core.domain import Document
from services.orchestrator.core.facade import Orchestrator
from services.orchestrator.core.ingest.state import IngestBatch
from services.orchestrator.core.ports import Ports
from services.orchestrator.transport.http.server import HttpServer
from services.orchestrator.transport.site import create_site
from services.orchestrator.wiring import build_core
from tests.support.fake_ports import FakeEmbedder, FakeGenerator, FakeRetriever
from tests.support.fake_stores import MemoryJobStore, MemoryTaskQueue

WRITER, READER = "rmk_mcp_unit_writer_key", "rmk_mcp_unit_reader_key"
DOCS = [
    Document("envoy", "Envoy listens on port 8080 and balances gRPC calls per request.", {"source": "envoy.md"}),
    Document("redis", "Redis holds the shared cache and the collection versions.", {"source": "redis.md", "page": 2}),
]


class Served:
    """An orchestrator over fake ports (and an in-memory job store) behind a real HTTP server."""

    def __init__(
        self, quota: QuotaSettings | None = None, auth: bool = True, mcp_allowed_hosts: tuple[str, ...] | None = None
    ) -> None:
        self.generator = FakeGenerator()
        ports = Ports(FakeEmbedder(), FakeRetriever(), self.generator)
        self.queue = MemoryTaskQueue()
        self.engine = build_core(CoreConfig(), ports=ports, jobs=(MemoryJobStore(), self.queue))
        grants = env_entry(Grant(digest(WRITER), "acme", ("acme_*",), write=True))
        grants += ";" + env_entry(Grant(digest(READER), "acme", ("acme_*",), write=False))
        settings = AuthSettings.from_env("orchestrator", {"RAGMESH_ORCHESTRATOR_API_KEYS": grants} if auth else {})
        self.security = security_interceptor("orchestrator", settings, quota or QuotaSettings())
        slot: BackendSlot[Orchestrator] = BackendSlot("orchestrator")
        slot.set(self.engine)
        self.server = HttpServer(create_site(slot, self.security, mcp_allowed_hosts), "127.0.0.1:0")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.port}/mcp"


async def start_served(
    quota: QuotaSettings | None = None, auth: bool = True, mcp_allowed_hosts: tuple[str, ...] | None = None
) -> Served:
    served = Served(quota, auth, mcp_allowed_hosts)
    await served.server.start()

    async def batches() -> AsyncIterator[IngestBatch]:
        yield IngestBatch("acme_docs", DOCS)

    async for _ in served.engine.ingest(batches(), Deadline(None)):
        pass
    return served
