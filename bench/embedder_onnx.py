"""ONNX embedder benchmark: torch vs ONNX fp32 vs ONNX int8 in-process at batch 32, their
quality against torch on the shipped evaluation set, and the ONNX service under 32
concurrent single-text callers vs ONNX in-process at batch 32 — all in one run.

    make bench-embedder-onnx       # or: python -m bench.embedder_onnx --texts 512 --rounds 3

Quality gate (docs/embedder-onnx.md): cosine >= 0.99 to torch on every evaluation text,
recall@5 and nDCG@10 within 0.005 of torch. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from bench.embedder import _serve, in_process_throughput, make_texts
from ragmesh.mesh.processes import ServiceProcess
from services.embedder.backend import EncoderBackend
from services.embedder.config import EmbedderConfig, OnnxSettings
from services.embedder.model import TransformersEncoder
from services.embedder.onnx_export import prepare_onnx_model
from services.embedder.onnx_model import OnnxEncoder
from tests.support.embedding_eval import Comparison, compare, embed, load_eval_set

QUANTIZATIONS = ("none", "int8")


def load_encoders(config: EmbedderConfig, cache_dir: str) -> dict[str, EncoderBackend]:
    """torch and both ONNX variants of the configured model (exported into ``cache_dir`` once)."""
    encoders: dict[str, EncoderBackend] = {
        "torch": TransformersEncoder(config.model_path, config.model_name, config.pooling, config.normalize, 0)
    }
    for quantize in QUANTIZATIONS:
        settings = OnnxSettings(cache_dir, quantize, config.onnx.threads)
        onnx_file = prepare_onnx_model(config.model_path, config.pooling, config.normalize, settings)
        encoders[_label(quantize)] = OnnxEncoder(
            config.model_path, config.model_name, config.pooling, config.normalize, 0, onnx_file=onnx_file,
            threads=settings.threads,
        )  # fmt: skip
    return encoders


def quality(encoders: dict[str, EncoderBackend]) -> dict[str, Comparison]:
    """Each ONNX variant against torch on the shipped evaluation set."""
    torch_encoder = encoders["torch"]
    assert isinstance(torch_encoder, TransformersEncoder)
    eval_set = load_eval_set(torch_encoder)
    reference = embed(encoders["torch"], eval_set.texts)
    candidates = {name: encoder for name, encoder in encoders.items() if name != "torch"}
    return {name: compare(eval_set, reference, embed(encoder, eval_set.texts)) for name, encoder in candidates.items()}


def quality_figures(name: str, result: Comparison) -> dict[str, object]:
    """One variant's quality as JSON-ready figures."""
    return {
        f"{name}_min_cosine": round(result.min_cosine, 4),
        f"{name}_mean_cosine": round(result.mean_cosine, 4),
        f"{name}_recall5_delta": round(result.recall5_delta, 4),
        f"{name}_ndcg10_delta": round(result.ndcg10_delta, 4),
        f"{name}_passes_gate": result.passes(),
    }


def in_process_rounds(
    encoders: dict[str, EncoderBackend], texts: list[str], args: argparse.Namespace
) -> dict[str, float]:
    """Median texts/s of each encoder at ``args.batch``, rounds alternating the order."""
    seen: dict[str, list[float]] = {name: [] for name in encoders}
    for number in range(args.rounds):
        order = list(encoders) if number % 2 == 0 else list(reversed(encoders))  # drift hits all alike
        for name in order:
            seen[name].append(in_process_throughput(encoders[name], texts, args.batch))  # type: ignore[arg-type]
        print(f"in-process round {number + 1}: " + ", ".join(f"{n} {seen[n][-1]:.1f}" for n in encoders))
    return {name: statistics.median(values) for name, values in seen.items()}


def service_rounds(
    encoder: EncoderBackend, texts: list[str], args: argparse.Namespace, cache_dir: str
) -> dict[str, Any]:
    """The ONNX service (``args.service_quantize``) vs the same model in-process at batch 32."""
    env = {
        "RAGMESH_EMBEDDER_BACKEND": "onnx",
        "RAGMESH_EMBEDDER_CACHE_DIR": cache_dir,
        "RAGMESH_EMBEDDER_ONNX_QUANTIZE": args.service_quantize,
    }
    service = ServiceProcess("embedder", env, Path(tempfile.mkdtemp(prefix="bench-embedder-onnx-")))
    rounds = []
    try:
        service.wait_serving()
        for number in range(1, args.rounds + 1):
            baseline = in_process_throughput(encoder, texts, args.batch)  # type: ignore[arg-type]
            served = _serve(service, texts, args)
            rounds.append({"in_process_texts_per_s": round(baseline, 1), **served})
            rounds[-1]["ratio"] = round(served["service_texts_per_s"] / baseline, 3)
            print(f"service round {number}: " + ", ".join(f"{k} {v}" for k, v in rounds[-1].items()))
    finally:
        service.terminate()
    return sorted(rounds, key=lambda r: r["ratio"])[len(rounds) // 2]


def main() -> None:
    """Run every measurement and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--texts", type=int, default=512, help="texts per throughput measurement")
    parser.add_argument("--callers", type=int, default=32, help="concurrent single-text callers of the service")
    parser.add_argument("--batch", type=int, default=32, help="in-process batch size")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (the median is reported)")
    parser.add_argument("--service-quantize", choices=QUANTIZATIONS, default=None, help="default: the config's")
    parser.add_argument("--cache-dir", default=None, help="ONNX cache (default: RAGMESH_EMBEDDER_CACHE_DIR)")
    args = parser.parse_args()
    config = EmbedderConfig.from_env()
    args.service_quantize = args.service_quantize or config.onnx.quantize
    cache_dir = args.cache_dir or config.onnx.cache_dir
    encoders = load_encoders(config, cache_dir)
    checked = quality(encoders)
    for name, comparison in checked.items():
        print(f"quality {name}: {comparison}")
    texts = make_texts(args.texts)
    speed = in_process_rounds(encoders, texts, args)
    service = service_rounds(encoders[_label(args.service_quantize)], texts, args, cache_dir)
    gate = checked[_label(args.service_quantize)]
    result = {
        "benchmark": "embedder_onnx",
        "texts": args.texts,
        "batch": args.batch,
        "callers": args.callers,
        **{f"{name}_batch32_texts_per_s": round(value, 1) for name, value in speed.items()},
        "onnx_fp32_vs_torch_batch32": round(speed["onnx_fp32"] / speed["torch"], 3),
        "onnx_int8_vs_torch_batch32": round(speed["onnx_int8"] / speed["torch"], 3),
        "service_quantize": args.service_quantize,
        "service_ratio": service["ratio"],
        "service": service,
        "min_cosine": round(gate.min_cosine, 4),
        "recall5_delta": round(gate.recall5_delta, 4),
        "ndcg10_delta": round(gate.ndcg10_delta, 4),
        "eval_texts": gate.texts,
        "torch_recall5": gate.reference.recall_at_5,
        "torch_ndcg10": round(gate.reference.ndcg_at_10, 4),
        **{key: v for name, r in checked.items() for key, v in quality_figures(name, r).items()},
    }
    print(
        f"batch {args.batch} in-process: torch {speed['torch']:.1f}, ONNX fp32 {speed['onnx_fp32']:.1f}, "
        f"ONNX int8 {speed['onnx_int8']:.1f} texts/s (int8 {result['onnx_int8_vs_torch_batch32']}x torch); "
        f"ONNX {args.service_quantize} service with {args.callers} single-text callers {service['ratio']}x in-process"
    )
    print(json.dumps(result))


def _label(quantize: str) -> str:
    return "onnx_int8" if quantize == "int8" else "onnx_fp32"


if __name__ == "__main__":
    main()
