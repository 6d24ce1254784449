"""The ONNX backend's settings, cache and export, on a tiny encoder built in the test
(the real MiniLM is compared in tests/integration/test_embedder_onnx.py)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

from services.common.config import ConfigError
from services.embedder.config import EmbedderConfig, OnnxSettings
from services.embedder.model import TransformersEncoder
from services.embedder.onnx_export import MODEL_FILE, cache_key, feed_forward_matmuls, prepare_onnx_model
from services.embedder.onnx_model import OnnxEncoder
from tests.support.tiny_encoder import save_tiny_encoder

TEXTS = ["The cat sits on the mat.", "short", "Milvus stores vectors for similarity search " * 3]


@pytest.fixture(scope="module")
def tiny_encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_tiny_encoder(tmp_path_factory.mktemp("tiny-encoder"))


def test_backend_settings_default_to_torch_and_int8() -> None:
    config = EmbedderConfig.from_env({})
    assert (config.backend, config.onnx.quantize, config.onnx.threads) == ("torch", "int8", 0)
    assert config.onnx.cache_dir.endswith(os.path.join(".cache", "ragmesh", "models", "embedder"))
    chosen = EmbedderConfig.from_env(
        {
            "RAGMESH_EMBEDDER_BACKEND": "ONNX",
            "RAGMESH_EMBEDDER_ONNX_QUANTIZE": "none",
            "RAGMESH_EMBEDDER_ONNX_THREADS": "2",
            "RAGMESH_EMBEDDER_CACHE_DIR": "/tmp/somewhere",
        }
    )
    assert chosen.backend == "onnx"
    assert chosen.onnx == OnnxSettings("/tmp/somewhere", "none", 2)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("RAGMESH_EMBEDDER_BACKEND", "tensorrt", "expected one of torch, onnx"),
        ("RAGMESH_EMBEDDER_ONNX_QUANTIZE", "int4", "expected one of int8, none"),
        ("RAGMESH_EMBEDDER_ONNX_THREADS", "-1", "RAGMESH_EMBEDDER_ONNX_THREADS"),
    ],
)
def test_bad_backend_settings_name_the_variable(variable: str, value: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        EmbedderConfig.from_env({variable: value})
    assert caught.value.variable == variable
    assert message in str(caught.value)


def test_cache_key_follows_the_model_files_and_the_settings(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.mkdir()
    weights = model / "model.safetensors"
    weights.write_bytes(b"12345")
    key = cache_key(model, "mean", True, "int8")
    assert key == cache_key(model, "mean", True, "int8")
    assert len({key, cache_key(model, "cls", True, "int8"), cache_key(model, "mean", False, "int8")}) == 3
    assert cache_key(model, "mean", True, "none") != key
    os.utime(weights, (1_000_000, 1_000_000))  # a reinstall: same files, new times
    assert cache_key(model, "mean", True, "int8") == key
    weights.write_bytes(b"12346")
    assert cache_key(model, "mean", True, "int8") != key


@pytest.mark.parametrize("pooling", ["mean", "cls"])
def test_exported_model_matches_torch_and_is_exported_once(
    tiny_encoder_dir: Path, tmp_path: Path, pooling: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = OnnxSettings(str(tmp_path / "cache"), quantize="none")
    onnx_file = prepare_onnx_model(str(tiny_encoder_dir), pooling, True, settings)
    assert onnx_file.name == MODEL_FILE and onnx_file.is_file()
    # A second start finds the entry and does not export again.
    monkeypatch.setattr("services.embedder.onnx_export.export", _no_export)
    assert prepare_onnx_model(str(tiny_encoder_dir), pooling, True, settings) == onnx_file
    assert [entry.name for entry in (tmp_path / "cache").iterdir()] == [onnx_file.parent.name]

    reference = TransformersEncoder(str(tiny_encoder_dir), "tiny", pooling, True, 16)
    encoder = OnnxEncoder(str(tiny_encoder_dir), "tiny", pooling, True, 16, onnx_file=onnx_file)
    assert encoder.info == reference.info
    ids = [encoder.truncate(seq) for seq in encoder.encode_ids(TEXTS)]
    assert ids == [reference.truncate(seq) for seq in reference.encode_ids(TEXTS)]
    assert max(len(seq) for seq in ids) == 16  # the long text was cut, closing token kept
    assert ids[2][-1] == encoder.encode_ids(TEXTS[2:])[0][-1]
    assert np.allclose(encoder.embed_ids(ids), reference.embed_ids(ids), atol=1e-5)


def test_int8_export_keeps_the_feed_forward_matmuls_in_fp32(tiny_encoder_dir: Path, tmp_path: Path) -> None:
    fp32 = prepare_onnx_model(str(tiny_encoder_dir), "mean", True, OnnxSettings(str(tmp_path), quantize="none"))
    excluded = feed_forward_matmuls(fp32)
    assert sorted(excluded) == sorted(
        f"/model/encoder/layer.{n}/{part}/dense/MatMul" for n in range(2) for part in ("intermediate", "output")
    )
    int8 = prepare_onnx_model(str(tiny_encoder_dir), "mean", True, OnnxSettings(str(tmp_path), quantize="int8"))
    assert int8.parent != fp32.parent
    assert [path.name for path in int8.parent.glob("*.onnx")] == [MODEL_FILE]
    import onnx

    ops = {node.name: node.op_type for node in onnx.load(str(int8)).graph.node}
    assert all(ops[name] == "MatMul" for name in excluded)
    assert "MatMulInteger" in ops.values() or "DynamicQuantizeMatMul" in ops.values()


def _no_export(*args: object) -> None:
    raise AssertionError("exported again although the cache entry exists")


def test_onnx_backend_without_onnxruntime_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real_find_spec(name, *a)
    )
    with pytest.raises(ConfigError) as caught:
        EmbedderConfig.from_env({"RAGMESH_EMBEDDER_BACKEND": "onnx"})
    assert caught.value.variable == "RAGMESH_EMBEDDER_BACKEND"
    assert "ragmesh[onnx]" in str(caught.value)
