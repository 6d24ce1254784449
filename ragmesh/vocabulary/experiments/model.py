"""The experiments as declared: experiments, variants, the choice of experiment per query
and the collections ingestion must fill.

Which experiment applies to a query: at most one. An experiment may list the
``collections`` it covers; one without the list covers every query. A query on collection
C runs under the enabled experiment that lists C, else under the enabled experiment that
lists none, else under no experiment. Parsing makes that choice unambiguous: no two
enabled experiments list the same collection and at most one enabled experiment lists none.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from ragmesh.vocabulary.experiments.settings import VariantSettings

FILE_VARIABLE = "RAGMESH_ORCHESTRATOR_EXPERIMENTS_FILE"


class ExperimentConfigError(ValueError):
    """The experiments file is wrong; the message names the variable, the file, experiment,
    variant and field."""

    def __init__(
        self, source: str, problem: str, *, experiment: str = "", variant: str = "", field_name: str = ""
    ) -> None:
        where = [f"experiment {experiment!r}"] if experiment else []
        where += [f"variant {variant!r}"] if variant else []
        where += [f"field {field_name!r}"] if field_name else []
        self.variable = f"{FILE_VARIABLE} ({source})"
        super().__init__(f"{self.variable}: " + (": ".join([*where, problem]) if where else problem))
        self.experiment = experiment
        self.variant = variant
        self.field_name = field_name


@dataclass(frozen=True)
class Variant:
    """One arm of an experiment: its share of traffic and what it changes."""

    name: str
    ratio: float
    settings: VariantSettings
    description: str = ""


@dataclass(frozen=True)
class Experiment:
    """Variants splitting the traffic of some collections (or all); the first is the control."""

    name: str
    variants: tuple[Variant, ...]
    description: str = ""
    enabled: bool = True
    #: Collections whose queries the experiment covers; empty covers every query.
    collections: tuple[str, ...] = ()

    @property
    def control(self) -> Variant:
        """The variant every other one is compared with (the first declared)."""
        return self.variants[0]

    @property
    def variant_names(self) -> tuple[str, ...]:
        """Variant names in declaration order."""
        return tuple(v.name for v in self.variants)

    def variant(self, name: str) -> Variant | None:
        """The variant called ``name``, if any."""
        return next((v for v in self.variants if v.name == name), None)


@dataclass(frozen=True)
class ExperimentsConfig:
    """Every declared experiment (an empty config runs no experiment)."""

    experiments: tuple[Experiment, ...] = ()
    source: str = ""

    def get(self, name: str) -> Experiment | None:
        """The experiment called ``name`` (enabled or not)."""
        return next((e for e in self.experiments if e.name == name), None)

    def for_collection(self, collection: str) -> Experiment | None:
        """The enabled experiment covering queries on ``collection`` (see the module doc)."""
        enabled = [e for e in self.experiments if e.enabled]
        named = next((e for e in enabled if collection in e.collections), None)
        return named or next((e for e in enabled if not e.collections), None)

    def labels(self) -> list[tuple[str, str]]:
        """Every (experiment, variant) pair: the only label values metrics may use."""
        return [(e.name, v.name) for e in self.experiments for v in e.variants]

    def check_collections(self, existing: Iterable[str]) -> None:
        """Raise ExperimentConfigError when an enabled experiment names a collection not in
        ``existing`` (disabled ones are not checked, so their variants' collections can be
        filled by ``ragmesh ingest`` before the experiment is switched on)."""
        known = set(existing)
        for experiment in (e for e in self.experiments if e.enabled):
            for name in experiment.collections:
                if name not in known:
                    raise ExperimentConfigError(
                        self.source,
                        f"collection {name!r} does not exist",
                        experiment=experiment.name,
                        field_name="collections",
                    )
            for variant in experiment.variants:
                name = variant.settings.collection or ""
                if name and name not in known:
                    raise ExperimentConfigError(
                        self.source,
                        f"collection {name!r} does not exist (fill it with `ragmesh ingest --experiment "
                        f"{experiment.name}` while the experiment is disabled)",
                        experiment=experiment.name,
                        variant=variant.name,
                        field_name="collection",
                    )


@dataclass(frozen=True)
class IngestTarget:
    """A collection ingestion must fill for an experiment, with its chunking."""

    collection: str
    chunk_tokens: int
    overlap_tokens: int
    variants: tuple[str, ...]


def ingest_targets(
    experiment: Experiment, base_collection: str, chunk_tokens: int, overlap_tokens: int
) -> list[IngestTarget]:
    """One target per distinct collection the variants read: a variant without a
    collection reads ``base_collection``; unset chunking falls back to the given defaults."""
    targets: dict[str, IngestTarget] = {}
    for variant in experiment.variants:
        settings = variant.settings
        collection = settings.collection or base_collection
        chunk = settings.chunk_tokens or chunk_tokens
        overlap = settings.overlap_tokens if settings.overlap_tokens is not None else overlap_tokens
        overlap = min(overlap, chunk - 1)  # a smaller chunk than the default overlap allows
        seen = targets.get(collection)
        names = (*seen.variants, variant.name) if seen else (variant.name,)
        targets[collection] = IngestTarget(collection, chunk, overlap, names)
    return list(targets.values())
