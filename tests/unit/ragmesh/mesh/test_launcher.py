"""Process plumbing of the launcher: children end with their parent; plans are checked."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ragmesh.mesh.addresses import host_port as _host_port
from ragmesh.mesh.launcher import Mesh, MeshError, core_settings_for_worker
from ragmesh.mesh.plan import MeshPlan
from ragmesh.mesh.processes import ROOT, free_port, service_env

PARENT = """
import subprocess, sys, time
from ragmesh.mesh.processes import tied_to_this_process
child = subprocess.Popen(tied_to_this_process(["sleep", "60"]))
print(child.pid, flush=True)
time.sleep(60)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as stat:  # a zombie waiting to be reaped is gone too
        return stat.read().split()[2] != "Z"


@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signals are a Linux feature")
def test_a_child_is_terminated_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT], cwd=ROOT, env=service_env(), stdout=subprocess.PIPE, text=True
    )
    child = 0
    try:
        assert parent.stdout is not None
        child = int(parent.stdout.readline())
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        for _ in range(100):
            if not _alive(child):
                break
            time.sleep(0.05)
        assert not _alive(child)
    finally:  # on a failure above, leave neither process behind
        parent.kill()
        parent.wait()
        if parent.stdout is not None:
            parent.stdout.close()
        if child and _alive(child):
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signal.SIGKILL)


def test_several_retrievers_need_a_milvus_server() -> None:
    plan = MeshPlan(replicas={"retriever": 2, "embedder": 1, "generator": 1, "orchestrator": 1})
    with pytest.raises(MeshError, match="Milvus server"):
        plan.check()
    MeshPlan(
        replicas={"retriever": 2, "embedder": 1, "generator": 1, "orchestrator": 1},
        retriever_uri="http://milvus:19530",
    ).check()


def test_a_taken_port_stops_the_launch_with_its_name(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        mesh = Mesh(MeshPlan(envoy_port=port, envoy_admin_port=free_port(), default_ports=False, log_dir=tmp_path))
        try:
            with pytest.raises(MeshError, match=f"port {port} \\(envoy\\) is already in use"):
                mesh.start(report=lambda line: None)
            assert mesh.replicas == []  # nothing was started
        finally:
            mesh.stop()  # whatever a failed assertion above left running


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://127.0.0.1:4317", "127.0.0.1:4317"),
        ("collector:4317", "collector:4317"),
        ("https://otel.example:443", "otel.example:443"),
    ],
)
def test_otlp_endpoints_are_read_as_host_and_port(endpoint: str, expected: str) -> None:
    assert _host_port(endpoint) == expected


def test_an_otlp_endpoint_without_a_port_is_refused() -> None:
    with pytest.raises(MeshError, match="OTLP endpoint"):
        _host_port("http://collector")


def test_workers_default_to_one_with_redis_and_need_a_broker() -> None:
    assert MeshPlan().worker_count == 0
    assert MeshPlan(redis_url="redis://127.0.0.1:6379/0").worker_count == 1
    assert MeshPlan(redis_url="redis://127.0.0.1:6379/0", workers=3).worker_count == 3
    with pytest.raises(MeshError, match="workers need a broker"):
        Mesh(MeshPlan(workers=2))
    env = Mesh(MeshPlan(redis_url="redis://127.0.0.1:6379/0"))._env("worker", 50055, 9105)
    assert env["RAGMESH_WORKER_ADDR"] == "127.0.0.1:50055" and env["RAGMESH_WORKER_METRICS_PORT"] == "9105"


def test_the_worker_inherits_the_orchestrators_core_settings_not_their_process_ones() -> None:
    orchestrator = {
        "RAGMESH_ORCHESTRATOR_CACHE_L1_ENTRIES": "10",
        "RAGMESH_ORCHESTRATOR_PARSE_MAX_PAGES": "50",
        "RAGMESH_ORCHESTRATOR_EXPERIMENTS_FILE": "/etc/ragmesh/experiments.toml",
        "RAGMESH_ORCHESTRATOR_HTTP_ADDR": "127.0.0.1:1",
        "RAGMESH_ORCHESTRATOR_AUTH_KEYS_FILE": "/keys.toml",
        "RAGMESH_ORCHESTRATOR_METRICS_PORT": "1",
        "OTEL_SERVICE_NAME": "x",
    }
    assert core_settings_for_worker(orchestrator) == {
        "RAGMESH_WORKER_CACHE_L1_ENTRIES": "10",
        "RAGMESH_WORKER_PARSE_MAX_PAGES": "50",
        "RAGMESH_WORKER_EXPERIMENTS_FILE": "/etc/ragmesh/experiments.toml",
    }


def test_a_sources_file_goes_to_the_orchestrators_and_workers_and_needs_workers() -> None:
    with pytest.raises(MeshError, match="sources are synced by workers"):
        Mesh(MeshPlan(sources_file="/etc/ragmesh/sources.toml"))
    mesh = Mesh(MeshPlan(redis_url="redis://127.0.0.1:6379/0", sources_file="/etc/ragmesh/sources.toml"))
    assert mesh._env("worker", 50055, 9105)["RAGMESH_WORKER_SOURCES_FILE"] == "/etc/ragmesh/sources.toml"
    mesh._http_ports = {50051: 8000}
    assert mesh._env("orchestrator", 50051, 9101)["RAGMESH_ORCHESTRATOR_SOURCES_FILE"] == "/etc/ragmesh/sources.toml"
    assert "RAGMESH_EMBEDDER_SOURCES_FILE" not in mesh._env("embedder", 50052, 9102)
