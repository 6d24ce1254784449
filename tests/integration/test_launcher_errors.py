"""`ragmesh up` failing to start: the failing component is named, its log tail shown, and
everything already started is stopped again."""

from __future__ import annotations

from pathlib import Path

import pytest

from ragmesh.mesh.launcher import Mesh, MeshError
from ragmesh.mesh.plan import MeshPlan
from ragmesh.mesh.processes import free_port

pytestmark = pytest.mark.integration


def test_a_missing_model_names_the_component_and_shows_its_log(tmp_path: Path) -> None:
    plan = MeshPlan(
        envoy_port=free_port(),
        envoy_admin_port=free_port(),
        default_ports=False,
        retriever_uri=str(tmp_path / "milvus.db"),
        log_dir=tmp_path / "logs",
        # In a folder nobody made: the launcher creates it (the retriever, started first, used
        # to fail on it with a traceback when --log-dir moved the logs elsewhere).
        traces_file=str(tmp_path / "var" / "traces.jsonl"),
        env={"embedder": {"RAGMESH_EMBEDDER_MODEL_PATH": str(tmp_path / "no-such-model")}},
    )
    mesh = Mesh(plan)
    try:
        with pytest.raises(MeshError) as caught:
            mesh.start(report=lambda line: None)
        message = str(caught.value)
        assert "embedder failed to start" in message
        assert "RAGMESH_EMBEDDER_MODEL_PATH" in message and "no-such-model" in message
        assert mesh.replicas  # processes were started ...
        assert all(r.process.process.poll() is not None for r in mesh.replicas)  # ... and all stopped
        assert mesh.envoy is not None and mesh.envoy.process.poll() is not None
    finally:
        mesh.stop()  # whatever an assertion above found still running
