"""Faults of the whole mesh through Envoy: the session's ``ragmesh up`` (two replicas of
every stateless component, one retriever since milvus-lite is one file, two workers),
real models.

- load: 32 concurrent streamed queries and an ingestion job together, zero errors, the
  peak memory of every process reported;
- a generator replica killed with -9 while streams run: the answers on it go on on the
  other replica (every stream finishes, nothing streamed is repeated or taken back),
  the others finish, new queries succeed at once, ``ragmesh up`` restarts it;
- a rolling restart (SIGTERM a replica of each component in turn) under a load of unary
  queries: none fails, the streams in flight complete, an ingestion job is handed over;
- the retriever killed with -9 in the middle of an ingestion job, and restarted: every
  document the job acknowledged is stored, and the job completes or names what failed.

Each test leaves the mesh whole (restarted replicas healthy in Envoy) for the next. The
figures go to ``faults.json`` in the mesh's log directory and to the test output.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest
import pytest_asyncio

from ragmesh.client import AsyncRagmeshClient
from ragmesh.v1 import orchestrator_pb2
from tests.support.faults import (
    Process,
    StreamOutcome,
    UnaryLoad,
    all_started,
    envoy_pid,
    peak_memory_mib,
    processes,
    stored_document_ids,
    stream_answer,
    wait_envoy_health,
)
from tests.support.mesh_cli import UpProcess
from tests.support.metrics import scrape, until_metric_at_least, value
from tests.support.retriever import retriever_stub

pytestmark = pytest.mark.integration

#: Short notes (see ``notes``): a prompt of ~100 tokens, not the ~330 of a sample-corpus
#: chunk; prefill is what the CPU spends a query on, and the faults do not need long prompts.
DOCS = "fault_notes"
NOTES = [
    "Envoy listens on port 8080 and spreads calls over the replicas.",
    "Milvus stores the vectors of every chunk.",
    "Redis holds the answer cache and the job queue.",
    "The generator writes answers token by token.",
    "The embedder turns texts into vectors.",
    "The retriever stores chunks in Milvus and searches them.",
]
#: A prompt SmolLM2 answers at length when decoding greedily (streams stay in flight).
LONG = "Count from 1 to 500, one number per line."
SUCCEEDED = orchestrator_pb2.JOB_STATE_SUCCEEDED
FINAL = {orchestrator_pb2.JOB_STATE_SUCCEEDED, orchestrator_pb2.JOB_STATE_FAILED}


@pytest_asyncio.fixture
async def client(mesh: UpProcess, notes: None) -> AsyncIterator[AsyncRagmeshClient]:
    async with AsyncRagmeshClient(mesh.address, timeout=600) as connected:
        yield connected


@pytest_asyncio.fixture(scope="module")
async def notes(mesh: UpProcess) -> None:
    """The collection the queries of this module ask."""
    async with AsyncRagmeshClient(mesh.address, timeout=600) as connected:
        done = await connected.ingest([{"id": f"note-{i}", "text": t} for i, t in enumerate(NOTES)], collection=DOCS)
    assert (done.documents_done, done.documents_failed) == (len(NOTES), 0)


def record(up: UpProcess, name: str, figures: dict[str, Any]) -> None:
    """Add ``figures`` under ``name`` to faults.json and print them (pytest -s shows them)."""
    path = up.log_dir / "faults.json"
    everything = json.loads(path.read_text()) if path.exists() else {}
    everything[name] = figures
    path.write_text(json.dumps(everything, indent=2))
    print(f"\n{name}: {json.dumps(figures)}")


def corpus(prefix: str, count: int) -> list[dict[str, str]]:
    topics = ["Envoy", "Milvus", "Redis", "the generator", "the embedder", "Kubernetes"]
    return [
        {"id": f"{prefix}-{i}", "text": f"Note {i} about {topics[i % 6]}: " + " ".join(f"f{i}x{j}." for j in range(30))}
        for i in range(count)
    ]


async def finished_job(client: AsyncRagmeshClient, job_id: str) -> orchestrator_pb2.IngestJob:
    async with asyncio.timeout(900):
        async for job in client.watch_job(job_id):
            if job.state in FINAL:
                return job
    raise AssertionError(f"the watch of {job_id} ended before the job did")


async def restarted(up: UpProcess, victim: Process) -> None:
    """Wait for ``ragmesh up`` to restart ``victim`` and Envoy to route to it again."""
    await asyncio.to_thread(up.wait_for, f"restarted {victim.component} on {victim.address}", 300)
    if victim.component != "worker":  # workers take tasks from Redis, not calls from Envoy
        await asyncio.to_thread(wait_envoy_health, up, victim.component, victim.address)


async def test_32_streams_and_an_ingestion_job_with_zero_errors(mesh: UpProcess, client: AsyncRagmeshClient) -> None:
    job_id = await client.submit_job(corpus("load", 60), collection="load_docs")
    outcomes = [StreamOutcome() for _ in range(32)]
    await asyncio.gather(
        *(
            stream_answer(client, f"Question {i}: what does Envoy do?", o, collection=DOCS, top_k=1, max_new_tokens=4)
            for i, o in enumerate(outcomes)
        )
    )
    job = await finished_job(client, job_id)
    errors = [f"{o.status}: {o.detail}" for o in outcomes if o.status != "ok"]
    assert errors == []
    assert all(o.tokens > 0 for o in outcomes)
    assert job.state == SUCCEEDED, job.error
    assert (job.progress.documents_done, job.progress.documents_failed) == (60, 0)
    memory = {f"{p.component} {p.address}": round(peak_memory_mib(p.pid)) for p in processes(mesh)}
    memory["envoy"] = round(peak_memory_mib(envoy_pid(mesh)))
    record(mesh, "load", {"streams": 32, "errors": len(errors), "documents": 60, "peak_rss_mib": memory})
    # Bounded: the largest process (a generator with its model) stays far from the machine's memory.
    assert max(memory.values()) < 4096, memory


async def test_a_generator_killed_mid_stream(mesh: UpProcess, client: AsyncRagmeshClient) -> None:
    generators = processes(mesh, "generator")
    outcomes = [StreamOutcome() for _ in range(6)]
    tasks = [
        asyncio.create_task(stream_answer(client, LONG, o, collection=DOCS, top_k=1, max_new_tokens=120, temperature=0))
        for o in outcomes
    ]
    await all_started(outcomes)
    for replica in generators:  # both replicas decode some of the streams
        await until_metric_at_least(replica.metrics_port, "ragmesh_generator_sequences_in_flight", 1)
    victim = generators[0]
    os.kill(victim.pid, signal.SIGKILL)
    before_kill = ["".join(o.deltas) for o in outcomes]
    async with asyncio.timeout(300):  # a stream on the dead replica must end, not hang
        await asyncio.gather(*tasks)
    statuses = sorted(o.status for o in outcomes)
    # The answers on the dead replica went on on the other one: every stream finished.
    assert statuses == ["ok"] * 6, [(o.status, o.detail) for o in outcomes]
    for outcome, seen in zip(outcomes, before_kill, strict=True):
        assert outcome.finish_reason, outcome  # a final message
        assert "".join(outcome.deltas).startswith(seen)  # nothing streamed was taken back
        assert outcome.counts == sorted(set(outcome.counts))  # no delta sent twice, counts go on
    resumed = sum(
        value(scrape(p.metrics_port), "ragmesh_orchestrator_generations_resumed_total")
        for p in processes(mesh, "orchestrator")
    )
    assert resumed >= 1
    answers = [
        await client.query(f"After the kill {i}: what is Envoy?", DOCS, top_k=1, max_new_tokens=2) for i in range(4)
    ]
    assert all(a.text for a in answers)
    await restarted(mesh, victim)
    record(mesh, "generator_kill", {"streams": len(outcomes), "statuses": statuses, "resumed": resumed})


async def _restart_under_streams(up: UpProcess, client: AsyncRagmeshClient, victim: Process) -> list[StreamOutcome]:
    """SIGTERM ``victim`` while two streams are in flight; wait until it is back."""
    outcomes = [StreamOutcome(), StreamOutcome()]
    tasks = [
        asyncio.create_task(
            stream_answer(client, "What does the retriever store?", o, collection=DOCS, top_k=1, max_new_tokens=12)
        )
        for o in outcomes
    ]
    await all_started(outcomes)
    os.kill(victim.pid, signal.SIGTERM)
    async with asyncio.timeout(300):
        await asyncio.gather(*tasks)
    await restarted(up, victim)
    return outcomes


async def test_a_rolling_restart_fails_no_query_and_hands_the_job_over(
    mesh: UpProcess, client: AsyncRagmeshClient
) -> None:
    load = UnaryLoad(client, DOCS)
    load.start()
    job_id = await client.submit_job(corpus("rolling", 100), collection="rolling_docs")
    restarts: list[str] = []
    streams: list[StreamOutcome] = []
    for component in ("worker", "embedder", "generator", "orchestrator"):
        victim = processes(mesh, component)[0]  # the other replica serves meanwhile
        streams += await _restart_under_streams(mesh, client, victim)
        restarts.append(f"{component} {victim.address}")
    await load.stop()
    job = await finished_job(client, job_id)
    assert load.failures == []
    assert [(o.status, o.detail) for o in streams if o.status != "ok"] == []
    assert job.state == SUCCEEDED, job.error
    assert (job.progress.documents_done, job.progress.documents_failed) == (100, 0)
    record(
        mesh,
        "rolling_restart",
        {"restarts": restarts, "unary_answered": load.answered, "unary_failed": 0, "streams_completed": len(streams)},
    )


async def test_the_retriever_killed_mid_job_loses_no_acknowledged_document(
    mesh: UpProcess, client: AsyncRagmeshClient
) -> None:
    documents = corpus("crash", 300)
    job_id = await client.submit_job(documents, collection="crash_docs")
    async with asyncio.timeout(600):
        async for job in client.watch_job(job_id):
            if job.progress.documents_done >= 32 or job.state in FINAL:
                break
    assert job.state not in FINAL, "the job ended before the retriever could be killed; give it more documents"
    [retriever] = processes(mesh, "retriever")
    os.kill(retriever.pid, signal.SIGKILL)
    job = await finished_job(client, job_id)
    await restarted(mesh, retriever)
    with retriever_stub(mesh.internal_address) as stub:
        stored = stored_document_ids(stub, "crash_docs")
    failed = {error.document_id for error in job.progress.errors}
    wanted = {d["id"] for d in documents}
    # Nothing acknowledged is lost: what is not stored is exactly what the job names as failed.
    assert wanted - stored == failed
    assert job.state == SUCCEEDED or failed, job.error
    found = await client.query("Note 7 about the generator", "crash_docs", top_k=1, max_new_tokens=2)
    assert found.sources
    record(mesh, "retriever_kill", {"documents": 300, "stored": len(stored & wanted), "failed": len(failed)})
