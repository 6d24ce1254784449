"""Orchestrator configuration, from ``RAGMESH_ORCHESTRATOR_*`` environment variables.

:class:`CoreConfig` is what :func:`services.orchestrator.wiring.build_core` needs (where the
components and Redis are, the cache, query defaults, ingestion and parsing limits,
experiments, the cross-encoder). The orchestrator reads it with its prefix and the worker
with ``RAGMESH_WORKER_``: one parser, so every setting means the same in both.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field

from ragmesh.vocabulary import ContextMode, ConversationQuery, RerankMethod
from ragmesh.vocabulary.experiments.model import ExperimentConfigError
from ragmesh.vocabulary.limits import MAX_CANDIDATES, MAX_DOCUMENTS_PER_MESSAGE, MAX_TOP_K
from ragmesh.vocabulary.names import DEFAULT_HTTP_PORT, DEFAULT_PORTS
from ragmesh.vocabulary.tls import ClientTls
from services.common.auth import AuthSettings
from services.common.config import ConfigError, Env, check_model_directory
from services.common.quota import QuotaSettings
from services.common.server_config import ServerSettings
from services.common.tls import client_tls_from_env
from services.orchestrator.core.experiments.config import ExperimentSettings
from services.orchestrator.core.settings import BatchSettings, CacheSettings, IngestSettings, QueryDefaults
from services.orchestrator.core.sources.config import SourcesConfigError, SourceSettings
from services.parsing import ParseSettings


@dataclass(frozen=True)
class RedisSettings:
    """Redis: the answer cache's L2, collection versions, job records and the task broker."""

    #: ``redis://host:port/db``, or "" for none (L1 cache only, no background jobs).
    url: str = ""
    #: Bound on every cache call; slower calls count as L2 errors and the query goes on.
    timeout_seconds: float = 0.1
    #: After a Redis error, skip Redis for this long instead of paying the timeout per query.
    backoff_seconds: float = 5.0
    #: Bound on job-record calls and on handing a task to the broker.
    broker_timeout_seconds: float = 5.0


@dataclass(frozen=True)
class CoreConfig:
    """Everything the core is built from (see :func:`services.orchestrator.wiring.build_core`)."""

    embedder_addr: str = f"127.0.0.1:{DEFAULT_PORTS['embedder']}"
    retriever_addr: str = f"127.0.0.1:{DEFAULT_PORTS['retriever']}"
    generator_addr: str = f"127.0.0.1:{DEFAULT_PORTS['generator']}"
    #: The component addresses are an Envoy that retries unary calls itself: the channels
    #: then retry only streams, so one failure is not retried at two layers (4 x 4 calls).
    components_behind_envoy: bool = False
    #: TLS (mTLS) to the components (Envoy's internal listener): ``COMPONENTS_TLS_CA`` / ``_CERT`` / ``_KEY``.
    components_tls: ClientTls | None = None
    redis: RedisSettings = field(default_factory=RedisSettings)
    cache: CacheSettings = field(default_factory=CacheSettings)
    defaults: QueryDefaults = field(default_factory=QueryDefaults)
    ingest: IngestSettings = field(default_factory=IngestSettings)
    batch: BatchSettings = field(default_factory=BatchSettings)
    #: Parsing of raw files in ingestion (limits, worker processes).
    parse: ParseSettings = field(default_factory=ParseSettings)
    #: A/B experiments (file, record bounds).
    experiments: ExperimentSettings = field(default_factory=ExperimentSettings)
    #: Hugging Face sequence-classification model for cross-encoder reranking ("" = off).
    cross_encoder_path: str = ""
    #: Sources synced into collections (the sources file, the readers' working copies).
    sources: SourceSettings = field(default_factory=SourceSettings)

    @classmethod
    def from_env(cls, env: Env) -> CoreConfig:
        """The core's settings from ``env``'s variables; ConfigError names a bad one."""
        cross_encoder = env.text("cross_encoder_path", "")
        if cross_encoder:
            check_model_directory(env.name("cross_encoder_path"), cross_encoder)
        experiments = ExperimentSettings.from_env(env)
        try:
            experiments.load()  # a bad experiments file is a config error, found at start
        except ExperimentConfigError as error:
            raise ConfigError(error.variable, str(error).removeprefix(f"{error.variable}: ")) from error
        return cls(
            embedder_addr=env.address("embedder_addr", f"127.0.0.1:{DEFAULT_PORTS['embedder']}"),
            retriever_addr=env.address("retriever_addr", f"127.0.0.1:{DEFAULT_PORTS['retriever']}"),
            generator_addr=env.address("generator_addr", f"127.0.0.1:{DEFAULT_PORTS['generator']}"),
            components_behind_envoy=env.flag("components_behind_envoy", False),
            components_tls=client_tls_from_env(env),
            redis=_redis_settings(env),
            cache=_cache_settings(env),
            defaults=_query_defaults(env),
            ingest=_ingest_settings(env),
            batch=BatchSettings(concurrency=env.integer("batch_concurrency", 8, 1, 256)),
            parse=ParseSettings.from_env(env),
            experiments=experiments,
            cross_encoder_path=cross_encoder,
            sources=_source_settings(env),
        )


@dataclass(frozen=True)
class OrchestratorConfig:
    """The orchestrator process: its servers, its callers' keys and limits, and the core."""

    server: ServerSettings
    core: CoreConfig = field(default_factory=CoreConfig)
    #: API keys (RAGMESH_ORCHESTRATOR_AUTH_KEYS_FILE / _API_KEYS); off when neither is set.
    auth: AuthSettings = field(default_factory=AuthSettings)
    #: Per-tenant limits (RAGMESH_ORCHESTRATOR_TENANT_RATE / _BURST / _STREAMS).
    quota: QuotaSettings = field(default_factory=QuotaSettings)
    #: Where the HTTP API (OpenAI-compatible, MCP, console) listens ("" turns it off).
    http_addr: str = ""
    #: The Host headers /mcp answers (MCP_ALLOWED_HOSTS); None: loopback only with auth off, any with it on.
    mcp_allowed_hosts: tuple[str, ...] | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> OrchestratorConfig:
        """Build the config from the environment; ConfigError names a bad variable."""
        env = Env("orchestrator", environ)
        return cls(
            server=ServerSettings.from_env("orchestrator", environ),
            core=CoreConfig.from_env(env),
            http_addr=_http_addr(env),
            mcp_allowed_hosts=_mcp_allowed_hosts(env),
            auth=AuthSettings.from_env("orchestrator", environ),
            quota=QuotaSettings.from_env("orchestrator", environ),
        )


def _source_settings(env: Env) -> SourceSettings:
    """The sources file, checked whole at start (a bad one names the file, source and field)."""
    default_cache = os.path.join(tempfile.gettempdir(), "ragmesh-sources")
    settings = SourceSettings(
        file=env.text("sources_file", ""),
        cache_dir=env.text("sources_cache_dir", default_cache),
        lock_seconds=env.number("sources_lock_seconds", 3600.0, 1.0, 7 * 86_400.0),
    )
    try:
        settings.load()
    except SourcesConfigError as error:
        raise ConfigError(env.name("sources_file"), str(error)) from None
    return settings


def _mcp_allowed_hosts(env: Env) -> tuple[str, ...] | None:
    """Comma-separated hosts (``host``, ``host:port``, ``host:*``); ``*`` turns the check off."""
    raw = (env.raw("mcp_allowed_hosts") or "").strip()
    if not raw:
        return None
    if raw == "*":
        return ()
    hosts = tuple(host.strip() for host in raw.split(","))
    for host in hosts:
        if not host or any(ch.isspace() or ch in "/,*" for ch in host.removesuffix(":*")):
            raise ConfigError(env.name("mcp_allowed_hosts"), f"{host!r} is not a host, host:port or host:*")
    return hosts


def _http_addr(env: Env) -> str:
    if (env.raw("http_addr") or "").lower() == "off":
        return ""
    return env.address("http_addr", f"127.0.0.1:{DEFAULT_HTTP_PORT}")


def _redis_settings(env: Env) -> RedisSettings:
    url = env.text("redis_url", "")
    if url and not url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError(env.name("redis_url"), f"expected redis://host:port/db, got {url!r}")
    return RedisSettings(
        url=url,
        timeout_seconds=env.number("redis_timeout_ms", 100.0, 1.0, 60_000.0) / 1000.0,
        backoff_seconds=env.number("redis_backoff_seconds", 5.0, 0.0, 3600.0),
        broker_timeout_seconds=env.number("broker_timeout_seconds", 5.0, 0.1, 60.0),
    )


def _cache_settings(env: Env) -> CacheSettings:
    return CacheSettings(
        l1_entries=env.integer("cache_l1_entries", 4096, 0),
        l1_ttl_seconds=env.number("cache_l1_ttl_seconds", 600.0, 0.0),
        l2_ttl_seconds=env.number("cache_l2_ttl_seconds", 86_400.0, 1.0),
    )


def _query_defaults(env: Env) -> QueryDefaults:
    return QueryDefaults(
        collection=env.text("default_collection", "default"),
        top_k=env.integer("top_k", 4, 1, MAX_TOP_K),
        candidates=env.integer("candidates", 20, 1, MAX_CANDIDATES),
        rerank=RerankMethod(env.choice("rerank", "none", tuple(RerankMethod))),
        mmr_lambda=env.number("mmr_lambda", 0.7, 0.0, 1.0),
        max_new_tokens=env.integer("max_new_tokens", 256, 1, 8192),
        temperature=env.number("temperature", 0.0, 0.0, 2.0),
        conversation_query=ConversationQuery(env.choice("conversation_query", "concat", tuple(ConversationQuery))),
        context=ContextMode(env.choice("context", ContextMode.SENTENCES.value, tuple(ContextMode))),
        context_chars=env.integer("context_chars", 600, 200, 100_000),
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
        max_documents_per_message=env.integer(
            "max_documents_per_message", MAX_DOCUMENTS_PER_MESSAGE, 1, MAX_DOCUMENTS_PER_MESSAGE
        ),
    )
