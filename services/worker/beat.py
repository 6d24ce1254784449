"""``python -m services.worker.beat``: the schedule of source syncs — Celery beat with
celery-redbeat's scheduler, which keeps the schedule in Redis and holds a lock there, so
exactly one beat sends due syncs however many replicas start (the others wait for the lock
and take over when its holder goes).

Each source with ``every`` in the sources file (``RAGMESH_WORKER_SOURCES_FILE``) is one entry
sending ``ragmesh.scheduled_sync(<source>)`` to the ingest queue; an entry whose source left
the file is dropped from the schedule. The worker runs the sync as a job.
"""

from __future__ import annotations

import datetime
import importlib
import logging
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from celery import Celery, signals
from prometheus_client import Gauge

from services.common.config import ConfigError, Env
from services.common.logs import configure_logging
from services.common.metrics import start_metrics_server
from services.common.server import config_or_exit
from services.orchestrator.adapters.background.celery_app import (
    INGEST_QUEUE,
    SCHEDULED_SYNC_TASK,
    EngineSettings,
    make_app,
)
from services.orchestrator.core.sources.model import SourceSpec
from services.worker.config import WorkerConfig

log = logging.getLogger("services.worker.beat")
KEY_PREFIX = "ragmesh:redbeat:"
SCHEDULING = Gauge("ragmesh_beat_scheduling", "1 when this beat holds the scheduler lock and sends due syncs")
SCHEDULED = Gauge("ragmesh_beat_scheduled_sources", "Sources with a schedule in the sources file")


def _scheduling(**_: Any) -> None:
    """Connected after redbeat's lock handler (which blocks until it holds the lock): called
    once this beat holds the lock."""
    SCHEDULING.set(1)


def beat_schedule(specs: Mapping[str, SourceSpec]) -> dict[str, dict[str, Any]]:
    """One entry per scheduled source."""
    return {
        f"sync:{spec.name}": {
            "task": SCHEDULED_SYNC_TASK,
            "schedule": datetime.timedelta(seconds=spec.every_seconds),
            "args": [spec.name],
            "options": {"queue": INGEST_QUEUE},
        }
        for spec in specs.values()
        if spec.every_seconds > 0
    }


def beat_app(
    engine: EngineSettings, specs: Mapping[str, SourceSpec], max_interval: float, lock_seconds: float
) -> Celery:
    """The worker's Celery app with the redbeat scheduler and the sources' schedule."""
    app = make_app(engine, "ragmesh-beat")
    app.conf.update(
        beat_scheduler="redbeat.RedBeatScheduler",
        beat_schedule=beat_schedule(specs),
        beat_max_loop_interval=max_interval,
        redbeat_redis_url=engine.broker_url,
        redbeat_key_prefix=KEY_PREFIX,
        redbeat_lock_key=KEY_PREFIX + "lock",
        redbeat_lock_timeout=lock_seconds,
    )
    return app


@dataclass(frozen=True)
class BeatSettings:
    """The beat's own settings (``RAGMESH_WORKER_BEAT_*``) beside the worker's config."""

    max_interval: float
    lock_seconds: float
    metrics_port: int

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> BeatSettings:
        """Read them; ConfigError names a bad variable."""
        env = Env("worker", environ)
        max_interval = env.number("beat_max_interval_seconds", 5.0, 0.1, 300.0)
        lock_seconds = env.number("beat_lock_seconds", max(5 * max_interval, 1.0), 1.0, 3600.0)
        return cls(max_interval, lock_seconds, env.integer("beat_metrics_port", 0, 0, 65535))


def main() -> None:
    """Read the worker's config and run the beat until SIGTERM."""
    config = config_or_exit(WorkerConfig.from_env)
    try:
        beat = BeatSettings.from_env()
    except ConfigError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        sys.exit(2)
    configure_logging(config.server.log_level)
    specs = config.core.sources.load()
    app = beat_app(config.engine, specs, beat.max_interval, beat.lock_seconds)
    importlib.import_module("redbeat.schedulers")  # its lock handler connects first ...
    signals.beat_init.connect(_scheduling, weak=False)  # ... so that this one runs after it
    SCHEDULED.set(len(beat_schedule(specs)))
    start_metrics_server(config.server.metrics_host, beat.metrics_port)
    log.info("beat: %d scheduled source(s)", len(beat_schedule(specs)))
    app.start(["beat", f"--loglevel={config.server.log_level.upper()}"])


if __name__ == "__main__":
    main()
