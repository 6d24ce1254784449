"""Generator config and the model cache: bad values named, conversions done once, atomically."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from ragmesh.mesh.processes import ROOT, service_env
from services.common.config import ConfigError
from services.common.model_cache import FINGERPRINT_SPAN
from services.generator.backends.loading import COMPLETE_MARKER, cache_key, cached_conversion
from services.generator.config import DEFAULT_GGUF_FILE, GeneratorConfig


def test_defaults_point_at_the_packaged_gguf() -> None:
    config = GeneratorConfig.from_env({})
    assert config.model_path.endswith(DEFAULT_GGUF_FILE)
    assert config.model_name == "SmolLM2-135M-Instruct"
    assert config.server.address == "127.0.0.1:50054"
    assert config.server.metrics_port == 9104
    limits = config.limits
    assert (limits.default_max_new_tokens, limits.max_new_tokens_limit) == (256, 2048)
    assert (limits.max_batch_size, limits.max_waiting, limits.truncate_prompt) == (8, 32, False)
    assert limits.join_wait_seconds == 0.01


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("RAGMESH_GENERATOR_MODEL_PATH", "/nonexistent/model", "set RAGMESH_GENERATOR_BACKEND=transformers"),
        ("RAGMESH_GENERATOR_MODEL_PATH", "/nonexistent/model.gguf", "no such GGUF"),
        ("RAGMESH_GENERATOR_DTYPE", "int4", "one of"),
        ("RAGMESH_GENERATOR_MAX_BATCH_SIZE", "0", "at least 1"),
        ("RAGMESH_GENERATOR_DEFAULT_MAX_NEW_TOKENS", "5000", "exceeds the limit"),
        ("RAGMESH_GENERATOR_CHAT_TEMPLATE", "/nonexistent.jinja", "no such file"),
        ("RAGMESH_GENERATOR_TRUNCATE_PROMPT", "maybe", "true or false"),
    ],
)
def test_bad_generator_settings_name_the_variable(variable: str, value: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        GeneratorConfig.from_env({variable: value})
    assert caught.value.variable == variable
    assert expected in str(caught.value)


def test_a_model_directory_is_named_after_itself(tiny_model_dir: Path) -> None:
    config = GeneratorConfig.from_env(
        {"RAGMESH_GENERATOR_MODEL_PATH": str(tiny_model_dir), "RAGMESH_GENERATOR_BACKEND": "transformers"}
    )
    assert config.model_name == tiny_model_dir.name


def test_cache_key_changes_with_the_file(tmp_path: Path) -> None:
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"one")
    first = cache_key(gguf)
    os.utime(gguf, (1_000_000, 1_000_000))  # a new venv installs the same file with a new mtime
    assert cache_key(gguf) == first
    gguf.write_bytes(b"two")
    assert cache_key(gguf) != first
    assert first.startswith("model-3-")


def test_a_large_file_is_fingerprinted_by_its_ends(tmp_path: Path) -> None:
    gguf = tmp_path / "big.gguf"
    gguf.write_bytes(bytes(3 * FINGERPRINT_SPAN))
    first = cache_key(gguf)
    with gguf.open("r+b") as file:  # the last byte (tensor data at the end) changes the key
        file.seek(3 * FINGERPRINT_SPAN - 1)
        file.write(b"x")
    assert cache_key(gguf) != first


def test_a_conversion_runs_once_and_is_reused(tmp_path: Path) -> None:
    calls: list[Path] = []

    def convert(target: Path) -> None:
        calls.append(target)
        (target / "config.json").write_text("{}")

    first = cached_conversion("m-1", tmp_path, convert)
    again = cached_conversion("m-1", tmp_path, convert)
    assert first == again == tmp_path / "m-1"
    assert len(calls) == 1
    assert (first / COMPLETE_MARKER).is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["m-1"]  # no scratch directory left behind


def test_concurrent_conversions_leave_one_complete_entry(tmp_path: Path) -> None:
    started = threading.Barrier(2)

    def convert(target: Path) -> None:
        started.wait()
        (target / "config.json").write_text("{}")
        time.sleep(0.05)  # both conversions overlap; one rename wins
        (target / "weights").write_text(target.name)

    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(cached_conversion("m-2", tmp_path, convert)))]
    threads.append(threading.Thread(target=lambda: results.append(cached_conversion("m-2", tmp_path, convert))))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [tmp_path / "m-2", tmp_path / "m-2"]
    assert sorted(p.name for p in (tmp_path / "m-2").iterdir()) == sorted(["config.json", "weights", COMPLETE_MARKER])
    assert [p.name for p in tmp_path.iterdir()] == ["m-2"]


def test_a_failed_conversion_leaves_nothing(tmp_path: Path) -> None:
    def convert(target: Path) -> None:
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        cached_conversion("m-3", tmp_path, convert)
    assert list(tmp_path.iterdir()) == []


def test_prepare_model_prints_the_directory_and_serves_nothing(tiny_model_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "services.generator", "--prepare-model"],
        cwd=ROOT,
        env=service_env(
            {"RAGMESH_GENERATOR_MODEL_PATH": str(tiny_model_dir), "RAGMESH_GENERATOR_BACKEND": "transformers"}
        ),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tiny_model_dir)
