"""Per-document permissions end to end: a real orchestrator with a key file and Redis (the L2
cache), a real worker for batches, the real embedder, retriever and generator. Two keys of one
tenant, one in group:hr: the HR document never reaches the other key — not as a source, not in
an answer's text, a batch, a listing, one document or a count — even after the question was
cached for the HR key; revoking the group hides it at once; a new access list (no
re-embedding) shows it at once, cached answers included."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ragmesh.cli.main import cli
from ragmesh.client import RagmeshClient, RagmeshError
from ragmesh.mesh.processes import ServiceProcess
from ragmesh.v1 import orchestrator_pb2
from ragmesh.vocabulary.keys import Grant, digest, new_key, toml_entry
from tests.support.redis_server import RedisServer
from tests.support.stack import client_of, start_orchestrator, start_worker, unique_collection

pytestmark = pytest.mark.integration
HR_KEY, OTHER_KEY = new_key(), new_key()
SECRET = "The salary review code of the station is ZEBRA-4471."
QUESTION = "What is the salary review code of the station?"
COLLECTION = unique_collection()


def _keys(hr_groups: tuple[str, ...]) -> str:
    hr = Grant(digest(HR_KEY), "acme", (COLLECTION,), write=True, user="alice", groups=hr_groups)
    other = Grant(digest(OTHER_KEY), "acme", (COLLECTION,), write=True, user="bob")
    return toml_entry(hr) + "\n" + toml_entry(other)


@pytest.fixture(scope="module")
def secured(
    tmp_path_factory: pytest.TempPathFactory,
    embedder_service: ServiceProcess,
    retriever_service: ServiceProcess,
    generator_service: ServiceProcess,
) -> Iterator[tuple[ServiceProcess, Path]]:
    """An orchestrator with two keys and Redis, and a worker on the same Redis."""
    work = tmp_path_factory.mktemp("permissions")
    keys = work / "keys.toml"
    keys.write_text(_keys(("hr",)))
    redis = RedisServer(work)
    redis.start()
    extra = {
        "RAGMESH_ORCHESTRATOR_AUTH_KEYS_FILE": str(keys),
        "RAGMESH_ORCHESTRATOR_AUTH_RELOAD_SECONDS": "0",
        "RAGMESH_ORCHESTRATOR_REDIS_URL": redis.url,
    }
    service = start_orchestrator(work, embedder_service, retriever_service, generator_service, extra)
    worker = start_worker(work, embedder_service.address, retriever_service.address, redis.url)
    try:
        yield service, keys
    finally:
        worker.terminate()
        service.terminate()
        redis.stop()


def _ask(client: RagmeshClient) -> tuple[set[str], str, str]:
    answer = client.query(QUESTION, COLLECTION, top_k=2, max_new_tokens=24, temperature=0.0)
    return {s.document_id for s in answer.sources}, answer.text, answer.cache.value


def _surfaces(client: RagmeshClient) -> tuple[set[str], int, str]:
    """What a key sees of the collection: its listing, its chunk count, GetDocument of hr."""
    listed = {d.document_id for d in client.documents(COLLECTION).documents}
    chunks = next(c.chunks for c in client.collections() if c.name == COLLECTION)
    try:
        client.document("salaries", COLLECTION)
        shown = "shown"
    except RagmeshError as error:
        shown = error.code
    return listed, chunks, shown


def _batch(client: RagmeshClient) -> set[str]:
    batch_id = client.submit_batch([{"query": QUESTION, "collection": COLLECTION, "retrieval_only": True}])
    for _ in range(600):  # bounded: a retrieval-only batch of one query takes a second
        state = client.batch(batch_id, include_results=True)
        if state.state == orchestrator_pb2.JOB_STATE_SUCCEEDED:
            return {s.document_id for s in state.results[0].response.sources}
        assert state.state != orchestrator_pb2.JOB_STATE_FAILED, state.error
        time.sleep(0.1)
    raise AssertionError("the batch did not finish")


def test_the_hr_document_reaches_only_the_hr_key(secured: tuple[ServiceProcess, Path]) -> None:
    service, keys = secured
    with (
        client_of(service, api_key=HR_KEY, timeout=120) as hr,
        client_of(service, api_key=OTHER_KEY, timeout=120) as other,
    ):
        hr.ingest([{"id": "salaries", "text": SECRET, "access": ["group:hr"]}], COLLECTION)
        hr.ingest([{"id": "canteen", "text": "The station canteen opens at seven and serves porridge."}], COLLECTION)
        sources, _, _ = _ask(hr)
        assert "salaries" in sources
        assert _ask(hr)[2] in ("l1", "l2")  # cached for the HR key
        seen, text, cache = _ask(other)
        assert seen == {"canteen"} and "ZEBRA" not in text and cache == "none"
        assert _batch(other) == {"canteen"} and "salaries" in _batch(hr)
        hr_view, other_view = _surfaces(hr), _surfaces(other)
        assert hr_view[0] == {"salaries", "canteen"} and hr_view[2] == "shown"
        assert other_view[0] == {"canteen"} and other_view[1] < hr_view[1] and other_view[2] == "NOT_FOUND"

        keys.write_text(_keys(()))  # the group is revoked
        revoked, text, cache = _ask(hr)
        assert revoked == {"canteen"} and "ZEBRA" not in text and cache == "none"
        assert _surfaces(hr)[0] == {"canteen"}

        # ragmesh documents access (SetDocumentAccess): the whole tenant's now
        command = ["--address", service.address, "--api-key", OTHER_KEY, "documents", "access", "salaries"]
        assert CliRunner().invoke(cli, [*command, "-c", COLLECTION]).exit_code == 2  # neither --acl nor --public
        made_public = CliRunner().invoke(cli, [*command, "-c", COLLECTION, "--public"])
        assert made_public.exit_code == 0 and "now readable by everyone" in made_public.output, made_public.output
        public, _, cache = _ask(other)
        assert "salaries" in public and cache == "none"
        with pytest.raises(RagmeshError, match="INVALID_ARGUMENT: access: principal 'hr' is invalid"):
            other.set_document_access(["salaries"], ["hr"], COLLECTION)
