"""Which variant a query runs under: deterministic, the same in every process and replica.

The bucket of a caller is the first 8 bytes of SHA-256(experiment name, NUL, unit id) read
as a number in [0, 1) — never Python's ``hash()``, which is salted per process. Variants
own consecutive slices of [0, 1) in declaration order, sized by their ratios, so a caller
keeps its variant as long as the experiment's name and ratios stay the same.

The unit id is the caller id. A query without one is bucketed by its trace id, so anonymous
traffic is still split (per request rather than per caller); with neither, a random id is
used. A caller may force a variant by name (``RequestContext.experiment_variant``).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from ragmesh.vocabulary.experiments.model import Experiment, ExperimentsConfig, Variant
from ragmesh.vocabulary.experiments.settings import VariantSettings
from services.common.errors import InvalidArgument

_SCALE = float(2**64)


@dataclass(frozen=True)
class Assignment:
    """The experiment and variant a query runs under, and why."""

    experiment: str
    variant: str
    settings: VariantSettings
    #: "forced" (the caller named the variant), "caller", "trace" or "random": what was hashed.
    basis: str


def bucket(experiment: str, unit: str) -> float:
    """A stable number in [0, 1) for ``unit`` within ``experiment``."""
    digest = hashlib.sha256(f"{experiment}\x00{unit}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / _SCALE


def pick(experiment: Experiment, point: float) -> Variant:
    """The variant whose slice of [0, 1) holds ``point`` (cumulative ratios)."""
    cumulative = 0.0
    for variant in experiment.variants:
        cumulative += variant.ratio
        if point < cumulative:
            return variant
    # Rounding can leave the sum a hair below 1: the top end goes to the last variant with traffic.
    return next(v for v in reversed(experiment.variants) if v.ratio > 0)


def assign_variant(experiment: Experiment, caller_id: str, trace_id: str = "", requested: str = "") -> Assignment:
    """The variant of one query in ``experiment``; an unknown ``requested`` name is InvalidArgument."""
    if requested:
        variant = experiment.variant(requested)
        if variant is None:
            raise InvalidArgument(
                f"experiment {experiment.name!r} has no variant {requested[:64]!r}; "
                f"valid variants: {', '.join(experiment.variant_names)}"
            )
        return Assignment(experiment.name, variant.name, variant.settings, "forced")
    if caller_id:
        unit, basis = caller_id, "caller"
    elif trace_id:
        unit, basis = trace_id, "trace"
    else:
        unit, basis = uuid.uuid4().hex, "random"
    variant = pick(experiment, bucket(experiment.name, unit))
    return Assignment(experiment.name, variant.name, variant.settings, basis)


def assign(
    config: ExperimentsConfig, collection: str, caller_id: str, trace_id: str = "", requested: str = ""
) -> Assignment | None:
    """The assignment of a query on ``collection`` (the collection the request named, before
    any variant redirects it), or None when no enabled experiment covers it. Forcing a variant
    of no experiment is InvalidArgument rather than silently ignored."""
    experiment = config.for_collection(collection)
    if experiment is None:
        if requested:
            raise InvalidArgument(
                f"experiment_variant {requested[:64]!r} was given but no enabled experiment covers "
                f"collection {collection!r}"
            )
        return None
    return assign_variant(experiment, caller_id, trace_id, requested)
