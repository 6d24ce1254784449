"""Experiments configuration: the env settings (file, record bounds) and the entry points
to the declared experiments (see :mod:`.model` for which experiment applies to a query and
:mod:`.parsing` for the file format's checks).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from services.common.config import ConfigError, Env
from services.orchestrator.experiments.model import (
    FILE_VARIABLE,
    Experiment,
    ExperimentConfigError,
    ExperimentsConfig,
    IngestTarget,
    Variant,
    ingest_targets,
)
from services.orchestrator.experiments.parsing import load_experiments, parse_experiments
from services.orchestrator.experiments.settings import VariantSettings


@dataclass(frozen=True)
class ExperimentSettings:
    """Where experiments are declared and how many records are kept."""

    #: The TOML file ("" = no experiments).
    file: str = ""
    #: Records kept per experiment (Redis stream cap, in-process deque length).
    max_records: int = 10_000
    #: How long a query stays open to feedback, and how long feedback is kept.
    feedback_ttl_seconds: float = 7 * 86_400.0
    #: Prefix of every Redis key the records use.
    key_prefix: str = "ragmesh:experiments"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> ExperimentSettings:
        """``RAGMESH_ORCHESTRATOR_EXPERIMENTS_FILE`` and friends; ConfigError names a bad one."""
        env = Env("orchestrator", environ)
        path = env.text("experiments_file", "")
        if path and not Path(path).is_file():
            raise ConfigError(env.name("experiments_file"), f"no such file: {path}")
        return cls(
            file=path,
            max_records=env.integer("experiment_max_records", 10_000, 10, 1_000_000),
            feedback_ttl_seconds=env.number("experiment_feedback_ttl_seconds", 7 * 86_400.0, 1.0),
            key_prefix=env.text("experiment_key_prefix", "ragmesh:experiments"),
        )

    def load(self) -> ExperimentsConfig:
        """The declared experiments (none when no file is set)."""
        return load_experiments(self.file) if self.file else ExperimentsConfig()


__all__ = [
    "FILE_VARIABLE",
    "Experiment",
    "ExperimentConfigError",
    "ExperimentSettings",
    "ExperimentsConfig",
    "IngestTarget",
    "Variant",
    "VariantSettings",
    "ingest_targets",
    "load_experiments",
    "parse_experiments",
]
