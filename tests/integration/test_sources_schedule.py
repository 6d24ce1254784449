"""Scheduled syncs: Celery beat with the redbeat scheduler sends a source's sync every second
(a short interval for the test), a real worker runs them, and of two beats started exactly one
schedules — the other waits for the lock in Redis and takes over when the first stops."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from ragmesh.cli.main import cli
from ragmesh.mesh.processes import ServiceProcess, free_port, stop_process, tied_to_this_process
from services.orchestrator.adapters.redis.guard import as_bytes
from services.orchestrator.adapters.redis.source_state import FORMAT, PREFIX
from services.orchestrator.core.codec import from_json
from services.orchestrator.core.sources.model import SyncStatus
from tests.support.metrics import scrape, value
from tests.support.redis_server import RedisServer
from tests.support.stack import start_orchestrator, start_worker, unique_collection

pytestmark = pytest.mark.integration
SENT = "Sending due task sync:docs"


def _beat(work: Path, env: dict[str, str], number: int) -> tuple[subprocess.Popen[bytes], Path, int]:
    log, port = work / f"beat-{number}.log", free_port()
    command = tied_to_this_process([sys.executable, "-m", "services.worker.beat"])
    env = {**os.environ, **env, "RAGMESH_WORKER_BEAT_METRICS_PORT": str(port)}
    with log.open("wb") as out:
        process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
    return process, log, port


def _scheduling(port: int) -> float:
    return value(scrape(port), "ragmesh_beat_scheduling")


def _wait(condition: object, what: str, tries: int = 600) -> None:
    for _ in range(tries):  # bounded: each try sleeps 0.1 s
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"never happened: {what}")


@pytest.fixture(scope="module")
def scheduled(
    tmp_path_factory: pytest.TempPathFactory, embedder_service: ServiceProcess, retriever_service: ServiceProcess
) -> Iterator[tuple[Path, dict[str, str], RedisServer]]:
    work = tmp_path_factory.mktemp("schedule")
    (work / "kb").mkdir()
    (work / "kb" / "dock.md").write_text("# Docking\n\nShuttles dock at bay seven.\n")
    sources = work / "sources.toml"
    sources.write_text(
        f'[[sources]]\nname = "docs"\nkind = "folder"\npath = "{work / "kb"}"\ncollection = "{unique_collection()}"\n'
        'every = "1s"\ninclude = ["*.md"]\n'
    )
    server = RedisServer(work)
    server.start()
    env = {
        "RAGMESH_WORKER_REDIS_URL": server.url,
        "RAGMESH_WORKER_SOURCES_FILE": str(sources),
        "RAGMESH_WORKER_SOURCES_CACHE_DIR": str(work / "cache"),
        "RAGMESH_WORKER_BEAT_MAX_INTERVAL_SECONDS": "0.5",
        "RAGMESH_WORKER_BEAT_LOCK_SECONDS": "3",
    }
    worker = start_worker(work, embedder_service.address, retriever_service.address, server.url, env)
    try:
        yield work, env, server
    finally:
        worker.terminate()
        server.stop()


def _jobs(client: redis.Redis, seen: set[str]) -> set[str]:
    raw = client.get(PREFIX + "docs:status")
    if raw is not None:
        status = from_json(as_bytes(raw), SyncStatus, FORMAT)
        if status.finished_at:
            assert status.error == "", status.error
            seen.add(status.job_id)
    return seen


def test_one_beat_schedules_and_another_takes_over(scheduled: tuple[Path, dict[str, str], RedisServer]) -> None:
    work, env, server = scheduled
    first, first_log, first_port = _beat(work, env, 1)
    _wait(lambda: "Acquired lock" in first_log.read_text() or first.poll() is not None, "the first beat holds the lock")
    assert first.poll() is None, first_log.read_text()[-2000:]
    second, second_log, second_port = _beat(work, env, 2)
    try:
        with redis.Redis.from_url(server.url) as client:
            seen: set[str] = set()
            _wait(lambda: len(_jobs(client, seen)) >= 3, "three scheduled syncs ran")
            assert first_log.read_text().count(SENT) >= 3
            assert SENT not in second_log.read_text() and "Acquired lock" not in second_log.read_text()
            assert (_scheduling(first_port), _scheduling(second_port)) == (1.0, 0.0)
            stop_process(first, 10)
            _wait(lambda: SENT in second_log.read_text(), "the second beat sends syncs once the first stopped")
            assert _scheduling(second_port) == 1.0
            before = len(seen)
            _wait(lambda: len(_jobs(client, seen)) > before, "a sync scheduled by the second beat ran")
    finally:
        stop_process(first, 10)
        stop_process(second, 10)


def test_the_cli_lists_syncs_and_shows_a_source(
    scheduled: tuple[Path, dict[str, str], RedisServer],
    embedder_service: ServiceProcess,
    retriever_service: ServiceProcess,
    generator_service: ServiceProcess,
) -> None:
    work, env, server = scheduled
    extra = {
        "RAGMESH_ORCHESTRATOR_REDIS_URL": server.url,
        "RAGMESH_ORCHESTRATOR_SOURCES_FILE": env["RAGMESH_WORKER_SOURCES_FILE"],
    }
    service = start_orchestrator(work, embedder_service, retriever_service, generator_service, extra)
    try:
        runner = CliRunner()
        address = ["--address", service.address]
        listed = runner.invoke(cli, [*address, "sources", "list"])
        assert listed.exit_code == 0 and "docs" in listed.output and "folder" in listed.output
        (work / "kb" / "crew.md").write_text("# Crew\n\nThe station cook is named Bartholomew.\n")
        synced = runner.invoke(cli, [*address, "sources", "sync", "docs", "--wait"])
        assert synced.exit_code == 0, synced.output
        status = runner.invoke(cli, [*address, "sources", "status", "docs"])
        assert status.exit_code == 0 and "last sync:    succeeded" in status.output, status.output
        missing = runner.invoke(cli, [*address, "sources", "status", "nope"])
        assert missing.exit_code == 1 and "NOT_FOUND: no source 'nope'; the sources are: docs" in missing.output
        (work / "kb").rename(work / "gone")
        failed = runner.invoke(cli, [*address, "sources", "sync", "docs", "--wait"])
        assert failed.exit_code == 1 and "nothing was deleted" in failed.output, failed.output
    finally:
        service.terminate()
