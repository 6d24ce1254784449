"""A real orchestrator process with auth on: keys are required, health stays open, and no
key — good, wrong or malformed — ever shows in a log, a span, a metric or an error message.
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ragmesh.client import RagmeshClient, RagmeshError
from ragmesh.mesh.processes import ServiceProcess
from ragmesh.v1 import orchestrator_pb2, orchestrator_pb2_grpc
from ragmesh.vocabulary.keys import Grant, digest, new_key, toml_entry
from tests.support.stack import start_orchestrator, unique_collection

pytestmark = pytest.mark.integration
GOOD, ROTATED, WRONG = new_key(), new_key(), new_key()


@pytest.fixture(scope="module")
def secured(
    tmp_path_factory: pytest.TempPathFactory,
    embedder_service: ServiceProcess,
    retriever_service: ServiceProcess,
    generator_service: ServiceProcess,
) -> Iterator[tuple[ServiceProcess, Path]]:
    """An orchestrator with a key file, spans to a file and debug logs, in its own directory."""
    work = tmp_path_factory.mktemp("secured")
    keys = work / "keys.toml"
    keys.write_text(toml_entry(Grant(digest(GOOD), "acme", ("*",), write=True)))
    extra = {
        "RAGMESH_ORCHESTRATOR_AUTH_KEYS_FILE": str(keys),
        "RAGMESH_ORCHESTRATOR_AUTH_RELOAD_SECONDS": "0",
        "RAGMESH_ORCHESTRATOR_LOG_LEVEL": "debug",
        "RAGMESH_TRACES_FILE": str(work / "traces.jsonl"),
    }
    service = start_orchestrator(work, embedder_service, retriever_service, generator_service, extra)
    try:
        yield service, work
    finally:
        service.terminate()


def _refused(address: str, key: str | None, header: str = "authorization") -> RagmeshError:
    with RagmeshClient(address, timeout=30) as client:
        metadata = () if key is None else ((header, key),)
        stub = orchestrator_pb2_grpc.OrchestratorServiceStub(client.channel)
        try:
            stub.ListCollections(orchestrator_pb2.OrchestratorCollectionsRequest(), metadata=metadata, timeout=30)
        except grpc.RpcError as error:
            return RagmeshError(error.code().name, error.details() or "")
    raise AssertionError("the call was not refused")


def test_a_key_is_required_and_secrets_never_leak(secured: tuple[ServiceProcess, Path]) -> None:
    service, work = secured
    with RagmeshClient(service.address, api_key=GOOD, timeout=60) as client:
        assert client.health().components
        collection = unique_collection()
        done = client.ingest([{"id": "d1", "text": "The mesh answers questions from indexed documents."}], collection)
        assert done.documents_done == 1
        assert client.query("What does the mesh do?", collection, retrieval_only=True).sources
    errors = [
        _refused(service.address, None),
        _refused(service.address, f"Bearer {WRONG}"),
        _refused(service.address, f"Basic {WRONG}"),
        _refused(service.address, WRONG, header="x-api-key"),
    ]
    assert [e.code for e in errors] == ["UNAUTHENTICATED"] * 4
    assert "missing API key" in errors[0].details and errors[1].details == "invalid API key"
    with grpc.insecure_channel(service.address) as channel:  # probes need no key
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

    # Rotation: a new key works once written to the file, no restart.
    (work / "keys.toml").write_text(toml_entry(Grant(digest(ROTATED), "acme", ("*",), write=True)))
    with RagmeshClient(service.address, api_key=ROTATED, timeout=60) as client:
        client.collections()
    assert _refused(service.address, f"Bearer {GOOD}").code == "UNAUTHENTICATED"

    with urllib.request.urlopen(f"http://127.0.0.1:{service.metrics_port}/metrics", timeout=10) as response:
        metrics = response.read().decode()
    assert service.terminate() == 0  # the exit flushes every span to the file
    texts = {path.name: path.read_text(errors="replace") for path in work.iterdir() if path.suffix != ".toml"}
    texts["metrics"] = metrics
    texts["errors"] = json.dumps([e.details for e in errors])
    logs = "".join(text for name, text in texts.items() if name.endswith(".log"))
    assert "refused: UNAUTHENTICATED" in logs, "the refusals are logged (so the logs were searched)"
    assert "ListCollections" in texts["traces.jsonl"], "the calls' spans were written"
    for secret in (GOOD, ROTATED, WRONG):
        for name, text in texts.items():
            assert secret not in text, f"a key appears in {name}"
            assert secret[len("rmk_") :] not in text, f"a key's body appears in {name}"
