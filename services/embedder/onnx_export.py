"""Exporting the encoder to ONNX once, optionally int8-quantised, into a cache directory.

The export traces the transformers model together with the torch backend's own pooling
(:func:`services.embedder.model.pool`), so the graph returns finished vectors. A cache
entry ``cache_dir/<model>-<quantize>-<digest>/`` is keyed by the model directory's path,
the sizes and contents of its files (:func:`~services.common.model_cache.file_fingerprint`)
and every setting that changes the graph;
it is written to a temporary directory and renamed into place (the generator's GGUF
cache does the same), so concurrent starts never load half a model. Exporting needs
torch and transformers; loading a finished entry needs only onnxruntime.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from pathlib import Path

from services.common.model_cache import cached_conversion, file_fingerprint
from services.embedder.config import OnnxSettings
from services.embedder.tokens import pooling_of

log = logging.getLogger(__name__)
#: Bump when the exported graph changes, so entries of an older export are not reused.
EXPORT_VERSION = 5
OPSET = 17
MODEL_FILE = "model.onnx"


def cache_key(model_path: Path, pooling: str, normalize: bool, quantize: str) -> str:
    """Name of the cache entry: changes with the model's files and the export settings."""
    files = sorted(item for item in model_path.rglob("*") if item.is_file())
    facts = {
        "path": str(model_path.resolve()),
        "files": [(str(item.relative_to(model_path)), file_fingerprint(item)) for item in files],
        "pooling": pooling,
        "normalize": normalize,
        "quantize": quantize,
        "opset": OPSET,
        "export": EXPORT_VERSION,
    }
    digest = hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:16]
    return f"{model_path.parent.name}-{model_path.name}-{quantize}-{digest}"


def prepare_onnx_model(model_path: str, pooling: str, normalize: bool, settings: OnnxSettings) -> Path:
    """The cached ONNX file of this model and these settings, exported first if missing."""
    path = Path(model_path)
    resolved = pooling_of(path) if pooling == "auto" else pooling
    key = cache_key(path, resolved, normalize, settings.quantize)
    entry = cached_conversion(
        key, Path(settings.cache_dir), lambda target: export(path, resolved, normalize, settings.quantize, target)
    )
    return entry / MODEL_FILE


def export(model_path: Path, pooling: str, normalize: bool, quantize: str, target: Path) -> None:
    """Write ``target/model.onnx``: the model with pooling, int8 weights if ``quantize``."""
    fp32 = target / ("fp32.onnx" if quantize == "int8" else MODEL_FILE)
    log.info("exporting %s to ONNX (once; later starts use the cache)", model_path)
    _export_fp32(model_path, pooling, normalize, fp32)
    if quantize == "int8":
        from onnxruntime.quantization import QuantType, quantize_dynamic  # type: ignore[import-untyped]

        log.info("quantising %s to int8", model_path)
        # Per-channel weight scales (one per output column): per-tensor scales gave a
        # cosine of 0.87 to the fp32 vectors on short texts. The feed-forward MatMuls stay
        # fp32: the dynamic per-tensor activation scale of their inputs (outliers after
        # GELU) costs the most; with them quantised too the minimum cosine on the shipped
        # evaluation texts was 0.983 and on one-word texts 0.98 (docs/embedder-onnx.md).
        quantize_dynamic(
            fp32,
            target / MODEL_FILE,
            weight_type=QuantType.QInt8,
            per_channel=True,
            # 7-bit weights: on x86 without VNNI (AVX2 only, as on this project's CI) the int8
            # matmul adds pairs of u8*s8 products in 16 bits, which saturates with full-range
            # weights (minimum cosine 0.989 there instead of 0.997).
            reduce_range=True,
            nodes_to_exclude=feed_forward_matmuls(fp32),
        )
        fp32.unlink()


def feed_forward_matmuls(onnx_file: Path) -> list[str]:
    """Names of the feed-forward MatMul nodes (BERT-style naming: ``.../layer.N/intermediate/
    dense/MatMul`` and ``.../layer.N/output/dense/MatMul``, not ``attention/output``)."""
    import onnx

    graph = onnx.load(str(onnx_file), load_external_data=False).graph
    return [
        node.name
        for node in graph.node
        if node.op_type == "MatMul"
        and "/attention/" not in node.name
        and ("/intermediate/dense/" in node.name or "/output/dense/" in node.name)
    ]


def _export_fp32(model_path: Path, pooling: str, normalize: bool, output: Path) -> None:
    """Trace model + pooling with torch's TorchScript-based exporter (needs no onnxscript)."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from services.embedder.model import pool

    class Pooled(torch.nn.Module):
        """The encoder followed by the torch backend's pooling and normalisation."""

        def __init__(self, model: torch.nn.Module) -> None:
            super().__init__()
            self.model = model

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            states = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            return pool(states, attention_mask, pooling, normalize)

    # eval() on the wrapper: the exporter restores the wrapper's mode afterwards, and a
    # fresh Module is in training mode (dropout on) — keep the whole tree in eval.
    wrapped = Pooled(AutoModel.from_pretrained(str(model_path))).eval()
    # A sample with padding, so the traced graph handles masked positions.
    sample = AutoTokenizer.from_pretrained(str(model_path))(
        ["a sample sentence to trace the model with", "short"], padding=True, return_tensors="pt"
    )
    ids, mask = sample["input_ids"], sample["attention_mask"]
    dynamic = {0: "batch", 1: "tokens"}
    with torch.inference_mode(), warnings.catch_warnings():
        # The tracer warns about Python branches in transformers' mask code; the export is
        # checked against torch numerically (tests/unit/embedder/test_onnx.py).
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", message="Exporting aten::index operator")
        # dynamo=False is the TorchScript exporter: deprecated, but it needs no onnxscript
        # and exports this model exactly (the dynamo exporter would add onnxscript + onnx-ir).
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            wrapped,
            (ids, mask),
            str(output),
            input_names=["input_ids", "attention_mask"],
            output_names=["embeddings"],
            dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic, "embeddings": {0: "batch"}},
            opset_version=OPSET,
            dynamo=False,
        )
