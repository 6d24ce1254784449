"""Helpers of the fault tests against a running ``ragmesh up``: its processes from
``mesh.json``, streams whose outcome is recorded instead of raised, a background load of
unary queries, peak memory per process, and Envoy's view of a replica."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragmesh.client import AsyncRagmeshClient, RagmeshError, types
from ragmesh.mesh.envoy_process import host_health
from ragmesh.v1 import retriever_pb2
from tests.support.mesh_cli import UpProcess
from tests.support.retriever import Stub


@dataclass(frozen=True)
class Process:
    """One process of the mesh, as ``mesh.json`` lists it."""

    component: str
    address: str
    pid: int
    metrics_port: int


def processes(up: UpProcess, component: str | None = None) -> list[Process]:
    """The mesh's replicas now (pids change when a replica is restarted)."""
    state = json.loads((up.log_dir / "mesh.json").read_text())
    found = [
        Process(r["component"], r["address"], r["pid"], r["metrics_port"] or 0)
        for r in state["replicas"]
        if component is None or r["component"] == component
    ]
    return found


def envoy_pid(up: UpProcess) -> int:
    return int(json.loads((up.log_dir / "mesh.json").read_text())["envoy"]["pid"])


def peak_memory_mib(pid: int) -> float:
    """The process's peak resident set (VmHWM) in MiB, read from /proc."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no VmHWM for pid {pid}")


def wait_envoy_health(up: UpProcess, cluster: str, address: str, healthy: bool = True, timeout: float = 120.0) -> None:
    """Block (bounded) until Envoy's health checks see ``address`` as healthy (or not)."""
    deadline = time.monotonic() + timeout
    flags: str | None = None
    while time.monotonic() < deadline:
        flags = host_health(up.admin_port).get(cluster, {}).get(address)
        if flags is not None and (flags == "healthy") == healthy:
            return
        time.sleep(0.1)
    raise AssertionError(f"Envoy never saw {cluster}/{address} {'healthy' if healthy else 'unhealthy'}: {flags}")


@dataclass
class StreamOutcome:
    """How one streamed query ended: "ok" or the status name it failed with."""

    status: str = "pending"
    tokens: int = 0
    #: The text deltas as they came, and each one's token count (counted on across a resumption).
    deltas: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    finish_reason: str = ""
    detail: str = ""
    #: time.monotonic() when the stream ended.
    ended: float = 0.0
    first_token: asyncio.Event = field(default_factory=asyncio.Event)


async def stream_answer(client: AsyncRagmeshClient, question: str, outcome: StreamOutcome, **options: Any) -> None:
    """Run one QueryStream to its end, recording the outcome (never raising RagmeshError)."""
    try:
        async for event in client.query_stream(question, **options):
            if isinstance(event, types.TokenEvent):
                outcome.tokens += 1
                outcome.deltas.append(event.text)
                outcome.counts.append(event.tokens)
                outcome.first_token.set()
            elif isinstance(event, types.DoneEvent):
                outcome.finish_reason = event.finish_reason
        outcome.status = "ok"
    except RagmeshError as error:
        outcome.status, outcome.detail = error.code, error.details
    finally:
        outcome.ended = time.monotonic()
        outcome.first_token.set()  # whoever waits for it must not wait for a failed stream


async def all_started(outcomes: Iterable[StreamOutcome], timeout: float = 300.0) -> None:
    """Wait (bounded) until every stream produced its first token or ended."""
    async with asyncio.timeout(timeout):
        await asyncio.gather(*(o.first_token.wait() for o in outcomes))


@dataclass
class UnaryLoad:
    """Unary queries asked one after another until :meth:`stop`; every failure is kept."""

    client: AsyncRagmeshClient
    collection: str
    answered: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: asyncio.Event = field(default_factory=asyncio.Event)
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.client.query(
                    f"Question {self.answered}: which port does Envoy use?", self.collection, top_k=1, max_new_tokens=1
                )
                self.answered += 1
            except RagmeshError as error:
                self.failures.append(f"{error.code}: {error.details}")

    async def stop(self) -> None:
        """Let the query in flight finish, then stop (bounded)."""
        self._stop.set()
        if self._task is not None:
            async with asyncio.timeout(300):
                await self._task


def stored_document_ids(stub: Stub, collection: str) -> set[str]:
    """Every document id the retriever stores in ``collection`` (all pages)."""
    ids: set[str] = set()
    token = ""
    for _ in range(1000):  # bounded: 10,000 documents per page
        page = stub.ListDocuments(
            retriever_pb2.ListDocumentsRequest(collection=collection, page_size=10_000, page_token=token), timeout=60
        )
        ids.update(d.document_id for d in page.documents)
        token = page.next_page_token
        if not token:
            return ids
    raise AssertionError("ListDocuments never reached its last page")
