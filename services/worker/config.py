"""Worker configuration, from ``RAGMESH_WORKER_*`` environment variables."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ragmesh.vocabulary.names import DEFAULT_METRICS_PORTS, DEFAULT_PORTS
from services.common.config import MIB, ConfigError, Env
from services.common.server_config import ServerSettings
from services.common.tls import ServerTls
from services.orchestrator.adapters.background.celery_app import QUEUES, EngineSettings
from services.orchestrator.config import CoreConfig


@dataclass(frozen=True)
class RetrySettings:
    """Retries of transient downstream errors (UNAVAILABLE, RESOURCE_EXHAUSTED)."""

    max_retries: int
    #: Upper bound of the exponential back-off (1 s, 2 s, 4 s, ... plus jitter).
    backoff_max_seconds: float


@dataclass(frozen=True)
class WorkerConfig:
    """The worker process (health server, broker delivery, retries, task bounds) and the core
    it runs jobs with (read by the orchestrator's own parser, with this prefix)."""

    server: ServerSettings
    engine: EngineSettings
    core: CoreConfig
    retry: RetrySettings
    #: A task running longer is cancelled (and failed); bounds a stuck downstream.
    task_time_limit_seconds: float
    #: How often readiness (broker, embedder, retriever) is checked for health.
    health_interval_seconds: float
    #: Queues this worker consumes ("ragmesh.ingest,ragmesh.query" by default).
    queues: tuple[str, ...]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> WorkerConfig:
        """Build the config from the environment; ConfigError names a bad variable."""
        env = Env("worker", environ)
        core = CoreConfig.from_env(env)
        broker = core.redis.url
        if not broker:
            raise ConfigError(env.name("redis_url"), "the worker needs a Redis broker (redis://host:port/db)")
        queues = tuple(q.strip() for q in env.text("queues", ",".join(QUEUES)).split(",") if q.strip())
        unknown = set(queues) - set(QUEUES)
        if unknown or not queues:
            raise ConfigError(env.name("queues"), f"expected some of {', '.join(QUEUES)}, got {sorted(unknown)}")
        return cls(
            server=_server_settings(env),
            engine=EngineSettings(
                broker_url=broker,
                visibility_timeout_seconds=env.number("visibility_timeout_seconds", 3900.0, 1.0, 7 * 86_400.0),
                restore_interval_seconds=env.number("restore_interval_seconds", 10.0, 0.1, 3600.0),
                socket_timeout_seconds=env.number("redis_timeout_seconds", 5.0, 0.1, 60.0),
                soft_shutdown_seconds=env.number("soft_shutdown_seconds", 25.0, 0.0, 3600.0),
            ),
            core=core,
            retry=RetrySettings(
                max_retries=env.integer("max_retries", 5, 0, 100),
                backoff_max_seconds=env.number("retry_backoff_max_seconds", 60.0, 1.0, 3600.0),
            ),
            task_time_limit_seconds=env.number("task_time_limit_seconds", 3600.0, 1.0, 86_400.0),
            health_interval_seconds=env.number("health_interval_seconds", 5.0, 0.1, 300.0),
            queues=queues,
        )


def _server_settings(env: Env) -> ServerSettings:
    """The health server's settings (the worker serves only grpc.health.v1)."""
    return ServerSettings(
        service="worker",
        address=env.address("addr", f"127.0.0.1:{DEFAULT_PORTS['worker']}"),
        metrics_port=env.integer("metrics_port", DEFAULT_METRICS_PORTS["worker"], 0, 65535),
        metrics_host=env.text("metrics_host", "127.0.0.1"),
        grace_seconds=env.number("grace_seconds", 30.0, 0.0, 3600.0),
        drain_seconds=env.number("drain_seconds", 0.5, 0.0, 300.0),
        max_message_bytes=4 * MIB,
        log_level=env.choice("log_level", "info", ("debug", "info", "warning", "error")),
        tls=ServerTls.from_env(env),
        health_port=env.integer("health_port", 0, 0, 65535),
    )
