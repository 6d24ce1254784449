"""The Node.js client (clients/node: TypeScript stubs generated from protos/ by ts-proto on
@grpc/grpc-js) runs its example against a secured mesh: the answer streamed with its sources
through Envoy over TLS, with an API key and a deadline — the same sources and text the Python
client gets — and the failures a caller must handle, with the CLI's exit codes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from ragmesh.mesh.processes import ROOT
from tests.support.secured_mesh import SecuredMesh

pytestmark = pytest.mark.integration
QUESTION = "How does Envoy balance gRPC calls?"
DOCUMENTS = [
    {"id": "envoy", "text": "Envoy balances each gRPC call across the replicas by least request."},
    {"id": "redis", "text": "Redis keeps the second cache level, shared by every orchestrator."},
    {"id": "milvus", "text": "Milvus stores the vectors; milvus-lite keeps them in one local file."},
]


@pytest.fixture(scope="module")
def example() -> list[str]:
    """``node clients/node/dist/ask.js``, built by ``make node-client`` (stubs generated from protos/)."""
    node = shutil.which("node")
    assert node is not None, "the Node client needs node (Node.js 18 or newer) on PATH"
    make = ["make", "--no-print-directory", "node-client"]
    built = subprocess.run(make, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)
    assert built.returncode == 0, built.stdout + built.stderr
    return [node, str(ROOT / "clients" / "node" / "dist" / "ask.js")]


def _ask(example: list[str], mesh: SecuredMesh, *args: str) -> subprocess.CompletedProcess[str]:
    # localhost, not 127.0.0.1: Node warns when TLS's server name is an IP address (RFC 6066).
    address = mesh.address.replace("127.0.0.1", "localhost")
    command = [*example, "--address", address, "--tls-ca", str(mesh.ca), *args]
    env = {k: v for k, v in os.environ.items() if k != "RAGMESH_API_KEY"}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)


def test_an_answer_streams_with_its_sources_through_envoy(example: list[str], secure_mesh: SecuredMesh) -> None:
    with secure_mesh.client(timeout=60) as client:
        assert not client.ingest(DOCUMENTS, collection="node_docs").errors
    done = _ask(example, secure_mesh, "--api-key", secure_mesh.api_key, "--deadline", "60", "--json",
                "-c", "node_docs", "-k", "2", "--max-new-tokens", "8", QUESTION)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    events = [json.loads(line) for line in done.stdout.splitlines()]
    kinds = [e["event"] for e in events]
    assert kinds[0] == "sources" and kinds[-1] == "final" and set(kinds[1:-1]) <= {"delta"}, kinds
    sources, final = events[0], events[-1]
    assert len(sources["trace_id"]) == 32 and final["completion_tokens"] > 0
    text = "".join(e["text"] for e in events if e["event"] == "delta")
    # The Python client gets the same answer (the Node call's, from the cache) with the same sources.
    with secure_mesh.client(timeout=60) as client:
        answer = client.query(QUESTION, "node_docs", top_k=2, max_new_tokens=8)
    assert sources["sources"], "the sources came first"
    assert [s["document_id"] for s in sources["sources"]] == [s.document_id for s in answer.sources]
    # Numbered from 1 (the context budget leaves out a source none of whose sentences match).
    assert [s["number"] for s in sources["sources"]] == list(range(1, len(sources["sources"]) + 1))
    assert text == answer.text


def test_a_wrong_key_a_passed_deadline_and_cleartext_are_told_apart(
    example: list[str], secure_mesh: SecuredMesh
) -> None:
    refused = _ask(example, secure_mesh, "--api-key", "rmk_wrong", "-c", "node_docs", QUESTION)
    assert refused.returncode == 1 and "UNAUTHENTICATED" in refused.stderr, refused.stderr
    late = _ask(example, secure_mesh, "--api-key", secure_mesh.api_key, "--deadline", "0.001", QUESTION)
    assert late.returncode == 3 and "DEADLINE_EXCEEDED" in late.stderr, late.stderr
    command = [
        *example,
        "--address",
        secure_mesh.address,
        "--api-key",
        secure_mesh.api_key,
        "--deadline",
        "10",
        QUESTION,
    ]
    cleartext = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert cleartext.returncode == 3 and "UNAVAILABLE" in cleartext.stderr, cleartext.stderr
    usage = subprocess.run([*example], capture_output=True, text=True, timeout=60, check=False)
    assert usage.returncode == 2 and "usage:" in usage.stderr
