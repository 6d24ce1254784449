"""Experiments settings from the environment (the file, record bounds). The file's format,
model and checks are :mod:`ragmesh.vocabulary.experiments`' (the CLI reads it too)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ragmesh.vocabulary.experiments.model import ExperimentsConfig
from ragmesh.vocabulary.experiments.parsing import load_experiments
from services.common.config import ConfigError, Env


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
    def from_env(cls, env: Env) -> ExperimentSettings:
        """``<prefix>EXPERIMENTS_FILE`` and friends (``RAGMESH_ORCHESTRATOR_EXPERIMENTS_FILE``
        for the orchestrator); ConfigError names a bad one."""
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
