"""Orchestrator configuration, from ``RAGMESH_ORCHESTRATOR_*`` environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from services.common.auth import AuthSettings
from services.common.config import ConfigError, Env, ServerSettings, check_model_directory
from services.common.names import DEFAULT_HTTP_PORT, DEFAULT_PORTS
from services.common.quota import QuotaSettings
from services.common.tls import ClientTls
from services.orchestrator.experiments.config import ExperimentSettings
from services.parsing import ParseSettings


@dataclass(frozen=True)
class CacheSettings:
    """The two-level answer cache."""

    l1_entries: int
    l1_ttl_seconds: float
    #: Redis URL for L2 (shared by replicas), or "" for L1 only.
    redis_url: str
    l2_ttl_seconds: float
    #: Bound on every Redis call; slower calls count as L2 errors and the query goes on.
    redis_timeout_seconds: float
    #: After a Redis error, skip Redis for this long instead of paying the timeout per query.
    redis_backoff_seconds: float
    #: Bound on connecting to the task broker (the same Redis) when a job or batch is sent.
    broker_timeout_seconds: float = 5.0


@dataclass(frozen=True)
class QueryDefaults:
    """Defaults for query options a request leaves unset."""

    collection: str
    top_k: int
    candidates: int
    rerank: str
    mmr_lambda: float
    max_new_tokens: int
    temperature: float
    #: How a follow-up's retrieval query is built: "last", "concat" or "rewrite".
    conversation_query: str = "concat"


@dataclass(frozen=True)
class IngestSettings:
    """Chunking and ingestion bounds."""

    chunk_tokens: int
    overlap_tokens: int
    embed_batch: int
    max_document_chars: int
    max_documents: int
    #: Documents in one message of the Ingest stream (the CLI sends at most 1,000).
    max_documents_per_message: int = 1000


@dataclass(frozen=True)
class OrchestratorConfig:
    """Where the components are and how the pipeline behaves."""

    server: ServerSettings
    embedder_addr: str
    retriever_addr: str
    generator_addr: str
    cache: CacheSettings
    defaults: QueryDefaults
    ingest: IngestSettings
    #: Hugging Face sequence-classification model for cross-encoder reranking ("" = off).
    cross_encoder_path: str
    #: API keys (RAGMESH_ORCHESTRATOR_AUTH_KEYS_FILE / _API_KEYS); off when neither is set.
    auth: AuthSettings = field(default_factory=AuthSettings)
    #: Per-tenant limits (RAGMESH_ORCHESTRATOR_TENANT_RATE / _BURST / _STREAMS).
    quota: QuotaSettings = field(default_factory=QuotaSettings)
    #: Parsing of raw files in ingestion (limits, worker processes).
    parse: ParseSettings = field(default_factory=ParseSettings)
    #: A/B experiments (file, record bounds).
    experiments: ExperimentSettings = field(default_factory=ExperimentSettings)
    #: Where the OpenAI-compatible HTTP API listens ("" turns it off).
    http_addr: str = ""
    #: The component addresses are an Envoy that retries unary calls itself: the channels
    #: then retry only streams, so one failure is not retried at two layers (4 x 4 calls).
    components_behind_envoy: bool = False
    #: TLS (mTLS) to the components (Envoy's internal listener): ``COMPONENTS_TLS_CA`` / ``_CERT`` / ``_KEY``.
    components_tls: ClientTls | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OrchestratorConfig:
        """Build the config from the environment; ConfigError names a bad variable."""
        env = Env("orchestrator", environ)
        cross_encoder = env.text("cross_encoder_path", "")
        if cross_encoder:
            check_model_directory(env.name("cross_encoder_path"), cross_encoder)
        return cls(
            server=ServerSettings.from_env("orchestrator", environ),
            embedder_addr=env.address("embedder_addr", f"127.0.0.1:{DEFAULT_PORTS['embedder']}"),
            retriever_addr=env.address("retriever_addr", f"127.0.0.1:{DEFAULT_PORTS['retriever']}"),
            generator_addr=env.address("generator_addr", f"127.0.0.1:{DEFAULT_PORTS['generator']}"),
            cache=_cache_settings(env),
            defaults=_query_defaults(env),
            ingest=_ingest_settings(env),
            cross_encoder_path=cross_encoder,
            components_behind_envoy=env.flag("components_behind_envoy", False),
            components_tls=ClientTls.from_env(env),
            http_addr=_http_addr(env),
            experiments=_experiments(environ),
            auth=AuthSettings.from_env("orchestrator", environ),
            quota=QuotaSettings.from_env("orchestrator", environ),
            parse=ParseSettings.from_env(env),
        )


def _experiments(environ: Mapping[str, str] | None) -> ExperimentSettings:
    """The experiments settings, with the file read and checked now (a bad file is a config error)."""
    settings = ExperimentSettings.from_env(environ)
    settings.load()
    return settings


def _http_addr(env: Env) -> str:
    if (env.raw("http_addr") or "").lower() == "off":
        return ""
    return env.address("http_addr", f"127.0.0.1:{DEFAULT_HTTP_PORT}")


def _cache_settings(env: Env) -> CacheSettings:
    redis_url = env.text("redis_url", "")
    if redis_url and not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(env.name("redis_url"), f"expected redis://host:port/db, got {redis_url!r}")
    return CacheSettings(
        l1_entries=env.integer("cache_l1_entries", 4096, 0),
        l1_ttl_seconds=env.number("cache_l1_ttl_seconds", 600.0, 0.0),
        redis_url=redis_url,
        l2_ttl_seconds=env.number("cache_l2_ttl_seconds", 86_400.0, 1.0),
        redis_timeout_seconds=env.number("redis_timeout_ms", 100.0, 1.0, 60_000.0) / 1000.0,
        redis_backoff_seconds=env.number("redis_backoff_seconds", 5.0, 0.0, 3600.0),
        broker_timeout_seconds=env.number("broker_timeout_seconds", 5.0, 0.1, 60.0),
    )


def _query_defaults(env: Env) -> QueryDefaults:
    return QueryDefaults(
        collection=env.text("default_collection", "default"),
        top_k=env.integer("top_k", 4, 1, 50),
        candidates=env.integer("candidates", 20, 1, 200),
        rerank=env.choice("rerank", "none", ("none", "mmr", "cross_encoder")),
        mmr_lambda=env.number("mmr_lambda", 0.7, 0.0, 1.0),
        max_new_tokens=env.integer("max_new_tokens", 256, 1, 8192),
        temperature=env.number("temperature", 0.0, 0.0, 2.0),
        conversation_query=env.choice("conversation_query", "concat", ("last", "concat", "rewrite")),
    )


def _ingest_settings(env: Env) -> IngestSettings:
    chunk_tokens = env.integer("chunk_tokens", 200, 16, 8192)
    overlap = env.integer("chunk_overlap_tokens", 32, 0, 8191)
    if overlap >= chunk_tokens:
        raise ConfigError(env.name("chunk_overlap_tokens"), f"must be less than chunk tokens ({chunk_tokens})")
    return IngestSettings(
        chunk_tokens=chunk_tokens,
        overlap_tokens=overlap,
        embed_batch=env.integer("embed_batch", 64, 1, 512),
        max_document_chars=env.integer("max_document_chars", 2_000_000, 1),
        max_documents=env.integer("max_documents", 100_000, 1),
        max_documents_per_message=env.integer("max_documents_per_message", 1000, 1, 100_000),
    )
