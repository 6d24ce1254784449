"""Background work through the real engine: Celery workers (``python -m services.worker``)
on a private Redis, the real embedder and retriever, an orchestrator that submits.

An embedder stand-in holds the second group of a job at a gate, so the worker is
stopped at a known point. A worker killed with SIGKILL mid-job: its task is redelivered to another worker, which
resumes after the last stored group (no acknowledged document lost, none stored twice).
A worker sent SIGTERM: it finishes or hands its task back within the grace period. A
batch of 200 queries: every answer retrievable. Redis down: submitting is UNAVAILABLE
while queries go on; Redis back: the same worker takes new work without a restart.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from ragmesh.client import RagmeshClient, RagmeshError
from ragmesh.mesh.processes import ServiceProcess
from ragmesh.v1 import orchestrator_pb2, retriever_pb2, retriever_pb2_grpc
from tests.support.gated_embedder import GatedEmbedder
from tests.support.mesh_cli import run_cli
from tests.support.metrics import scrape, value
from tests.support.redis_server import RedisServer
from tests.support.stack import client_of, start_orchestrator, start_worker, unique_collection

pytestmark = pytest.mark.integration
SUCCEEDED, PENDING = orchestrator_pb2.JOB_STATE_SUCCEEDED, orchestrator_pb2.JOB_STATE_PENDING
BAD_DOCUMENTS: list[dict[str, object]] = [{"id": "empty", "text": "   "}, {"id": "doc-3", "text": "a duplicate id"}]


def _submitter(log_dir: Path, redis_url: str, embedder: str, retriever: ServiceProcess) -> ServiceProcess:
    """An orchestrator on ``redis_url`` (no generator: nothing here generates an answer)."""
    extra = {
        "RAGMESH_ORCHESTRATOR_REDIS_URL": redis_url,
        "RAGMESH_ORCHESTRATOR_REDIS_BACKOFF_SECONDS": "0",
        "RAGMESH_ORCHESTRATOR_EMBEDDER_ADDR": embedder,
        "RAGMESH_ORCHESTRATOR_GENERATOR_ADDR": "127.0.0.1:1",
    }
    return start_orchestrator(log_dir, retriever, retriever, retriever, extra)


@pytest.fixture
def gated(
    log_dir: Path, redis_server: RedisServer, retriever_service: ServiceProcess
) -> Iterator[tuple[GatedEmbedder, ServiceProcess]]:
    """An embedder that holds the second Embed call (the second group of a job), and an
    orchestrator to submit with."""
    with GatedEmbedder(free_calls=1) as embedder:
        orchestrator = _submitter(log_dir, redis_server.url, embedder.address, retriever_service)
        try:
            yield embedder, orchestrator
        finally:
            orchestrator.terminate()


def _documents(count: int, words: int = 12) -> list[dict[str, object]]:
    return [
        {"id": f"doc-{i}", "text": f"Document {i} is about subject {i % 11}. " * (words // 6)} for i in range(count)
    ]


def _count(retriever: ServiceProcess, collection: str) -> int:
    with grpc.insecure_channel(retriever.address) as channel:
        info = retriever_pb2_grpc.RetrieverServiceStub(channel).DescribeCollection(
            retriever_pb2.DescribeCollectionRequest(name=collection)
        )
    return int(info.collection.count)


def _until(
    read: Callable[[], orchestrator_pb2.IngestJob], holds: Callable[[orchestrator_pb2.IngestJob], bool]
) -> orchestrator_pb2.IngestJob:
    """Poll the job record until ``holds`` (bounded: 120 s)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = read()
        if holds(job):
            return job
        time.sleep(0.02)
    raise TimeoutError(f"the job never reached the expected state: {read()}")


def _held(embedder: GatedEmbedder, client: RagmeshClient, job_id: str) -> orchestrator_pb2.IngestJob:
    """The job once its first group is stored and the second one's Embed call is held."""
    assert embedder.held.wait(120), "the job never reached its second group"
    return _until(lambda: client.job(job_id), lambda job: job.progress.documents_done == 32)


def test_a_killed_worker_loses_nothing_and_stores_nothing_twice(
    log_dir: Path,
    redis_server: RedisServer,
    gated: tuple[GatedEmbedder, ServiceProcess],
    retriever_service: ServiceProcess,
) -> None:
    embedder, orchestrator = gated
    collection = unique_collection()
    documents = _documents(96) + BAD_DOCUMENTS
    first = start_worker(log_dir, embedder.address, retriever_service.address, redis_server.url)
    try:
        with client_of(orchestrator) as client:
            job_id = client.submit_job(documents, collection)
            at_kill = _held(embedder, client, job_id)
            first.process.kill()  # SIGKILL mid-job: no hand-over, the message stays unacknowledged
            first.process.wait(30)
            embedder.release()
            assert not at_kill.progress.done and f":{first.process.pid}" in at_kill.runner
            second = start_worker(log_dir, embedder.address, retriever_service.address, redis_server.url)
            try:
                final = _until(lambda: client.job(job_id), lambda job: job.progress.done)  # redelivered
            finally:
                second.terminate()
    finally:
        first.terminate()
    assert final.state == SUCCEEDED, final.error
    assert final.attempts == 2 and f":{second.process.pid}" in final.runner
    assert (final.progress.documents_done, final.progress.documents_failed) == (96, 2)
    assert sorted(e.document_id for e in final.progress.errors) == ["doc-3", "empty"]
    # The resumed delivery started after the stored group: 1 Embed call (held) before the
    # kill, 1 for group 1 and 2 more for groups 2 and 3 — group 1 was not embedded again.
    assert embedder.calls == 4
    # Every document's chunk (one each) is stored, once: chunk ids are stable, upserts replace.
    assert _count(retriever_service, collection) == final.progress.chunks_done == 96


def test_sigterm_hands_the_task_back_within_the_grace_period(
    log_dir: Path,
    redis_server: RedisServer,
    gated: tuple[GatedEmbedder, ServiceProcess],
    retriever_service: ServiceProcess,
) -> None:
    embedder, orchestrator = gated
    collection = unique_collection()
    grace = {"RAGMESH_WORKER_SOFT_SHUTDOWN_SECONDS": "0.5"}
    leaving = start_worker(log_dir, embedder.address, retriever_service.address, redis_server.url, grace)
    with client_of(orchestrator) as client:
        job_id = client.submit_job(_documents(96), collection)
        _held(embedder, client, job_id)  # the task cannot finish: it must be handed back
        code = leaving.terminate(timeout=60)  # SIGTERM (SIGKILL past 60 s, and the test fails)
        after = client.job(job_id)
        assert code == 0, leaving.log_tail()
        assert after.state == PENDING and "handed back" in after.error, after
        embedder.release()
        staying = start_worker(log_dir, embedder.address, retriever_service.address, redis_server.url)
        try:
            final = _until(lambda: client.job(job_id), lambda job: job.progress.done)
        finally:
            staying.terminate()
    assert final.state == SUCCEEDED and final.progress.documents_done == 96, final.error
    assert final.attempts == 2
    assert _count(retriever_service, collection) == 96


def _redis_down_and_back(client: RagmeshClient, redis_server: RedisServer, queries: list[Any], collection: str) -> None:
    """Redis stops: submitting is UNAVAILABLE, queries still work; it comes back (empty, same
    port): the worker reconnects by itself and answers a new batch."""
    redis_server.stop()
    with pytest.raises(RagmeshError) as error:
        client.submit_batch(queries[:1])
    assert error.value.code == "UNAVAILABLE" and "background jobs are unavailable" in str(error.value)
    answer = client.query("What is subject 3 about?", collection, retrieval_only=True)
    assert answer.sources  # queries do not need the engine

    redis_server.start()  # same port, empty: the worker reconnects by itself
    second = client.submit_batch(queries)
    deadline = time.monotonic() + 120
    while client.batch(second).state != SUCCEEDED and time.monotonic() < deadline:
        time.sleep(0.1)
    assert client.batch(second).done == 5


def _batch_through_the_cli(address: str, collection: str, tmp_path: Path) -> None:
    """Submit a JSONL file of queries with the CLI, wait for it, write the results."""
    lines = tmp_path / "queries.jsonl"
    lines.write_text('"What is subject 1 about?"\n{"query": "subject 2?", "top_k": 2}\n')
    at = ("--address", address)
    submitted = run_cli(*at, "batch", "submit", str(lines), "-c", collection, "--retrieval-only")
    assert submitted.returncode == 0, submitted.stderr
    cli_batch = submitted.stdout.strip()
    status = run_cli(*at, "batch", "status", cli_batch, "--wait", timeout=120)
    assert status.returncode == 0 and status.stdout.startswith("SUCCEEDED  2/2 queries"), status
    out = tmp_path / "answers.jsonl"
    assert run_cli(*at, "batch", "results", cli_batch, "--out", str(out)).returncode == 0
    answers = [json.loads(line) for line in out.read_text().splitlines()]
    assert [len(a["response"]["sources"]) for a in answers] == [4, 2]  # the default top_k, then 2


def test_a_batch_of_200_queries_then_redis_down_and_back(
    log_dir: Path, tmp_path: Path, redis_server: RedisServer, retriever_service: ServiceProcess
) -> None:
    collection = unique_collection()
    embedder = GatedEmbedder(free_calls=1_000_000).__enter__()  # never holds: vectors without a model
    orchestrator = _submitter(log_dir, redis_server.url, embedder.address, retriever_service)
    worker = start_worker(log_dir, embedder.address, retriever_service.address, redis_server.url)
    try:
        with client_of(orchestrator) as client:
            client.ingest(_documents(60), collection)
            queries: list[orchestrator_pb2.QueryRequest | dict[str, object]] = [
                {
                    "query": f"What is subject {i % 11} about?",
                    "collection": collection,
                    "top_k": 3,
                    "retrieval_only": True,
                }
                for i in range(199)
            ]
            queries.append({"query": "x", "collection": "no such name!", "retrieval_only": True})  # its own error
            batch_id = client.submit_batch(queries)
            deadline = time.monotonic() + 120
            while client.batch(batch_id).state != SUCCEEDED and time.monotonic() < deadline:
                time.sleep(0.1)
            done = client.batch(batch_id, include_results=True)
            assert (done.state, done.total, done.done, done.failed) == (SUCCEEDED, 200, 200, 1), done.error
            assert [r.index for r in done.results] == list(range(200))
            assert all(len(r.response.sources) == 3 for r in done.results[:199])
            assert done.results[199].error_code == "INVALID_ARGUMENT" and "collection" in done.results[199].error
            _batch_through_the_cli(orchestrator.address, collection, tmp_path)

            samples = scrape(worker.metrics_port)
            assert value(samples, "ragmesh_worker_tasks_total", task="batch", state="succeeded") == 2
            assert value(samples, "ragmesh_worker_queue_depth", queue="ragmesh.query") == 0

            _redis_down_and_back(client, redis_server, queries[:5], collection)
    finally:
        worker.terminate()
        orchestrator.terminate()
        embedder.__exit__()
