"""Reading and validating an experiments TOML file.

Every error names the file, the experiment, the variant and the field it is about.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ragmesh.vocabulary.experiments.model import Experiment, ExperimentConfigError, ExperimentsConfig, Variant
from ragmesh.vocabulary.experiments.settings import SETTING_CHECKS, VariantSettings, template_problem
from ragmesh.vocabulary.names import IDENTIFIER

MAX_EXPERIMENTS = 32
#: Variants become Prometheus labels: the bound keeps the series count small.
MAX_VARIANTS = 16
RATIO_TOLERANCE = 1e-6
#: The orchestrator's own prompt: naming it is the same as setting no template.
DEFAULT_TEMPLATE = "default"


def load_experiments(path: str | Path) -> ExperimentsConfig:
    """Read and validate an experiments file."""
    source = str(path)
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise ExperimentConfigError(source, f"cannot read the file: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise ExperimentConfigError(source, f"is not valid TOML: {error}") from None
    return parse_experiments(data, source)


def parse_experiments(data: Mapping[str, Any], source: str = "<experiments>") -> ExperimentsConfig:
    """Validate parsed TOML (``templates`` table, ``experiments`` array of tables)."""
    _unknown_keys(source, data, {"templates", "experiments"})
    templates = _templates(source, data.get("templates", {}))
    raw = data.get("experiments", [])
    if not isinstance(raw, list) or not all(isinstance(e, dict) for e in raw):
        raise ExperimentConfigError(source, "'experiments' must be an array of tables ([[experiments]])")
    if len(raw) > MAX_EXPERIMENTS:
        raise ExperimentConfigError(source, f"{len(raw)} experiments; the limit is {MAX_EXPERIMENTS}")
    experiments: list[Experiment] = []
    for index, table in enumerate(raw):
        experiment = _experiment(source, index, table, templates)
        if any(e.name == experiment.name for e in experiments):
            raise ExperimentConfigError(
                source, "the name is used by another experiment", experiment=experiment.name, field_name="name"
            )
        experiments.append(experiment)
    _check_coverage(source, experiments)
    return ExperimentsConfig(tuple(experiments), source)


def _templates(source: str, raw: Any) -> dict[str, str]:
    if not isinstance(raw, dict):
        raise ExperimentConfigError(source, "'templates' must be a table of name = template text")
    for name, text in raw.items():
        problem = template_problem(text) if isinstance(text, str) else "must be a string"
        if not IDENTIFIER.fullmatch(name) or name == DEFAULT_TEMPLATE:
            problem = f"the name {name!r} is not allowed (an identifier, not {DEFAULT_TEMPLATE!r})"
        if problem:
            raise ExperimentConfigError(source, f"template {name!r} {problem}", field_name="templates")
    return dict(raw)


def _experiment(source: str, index: int, table: dict[str, Any], templates: dict[str, str]) -> Experiment:
    name = table.get("name")
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
        raise ExperimentConfigError(
            source,
            f"experiment #{index + 1}: 'name' must be 1-64 letters, digits or underscores starting with a letter,"
            f" got {name!r}",
            field_name="name",
        )
    _unknown_keys(source, table, {"name", "description", "enabled", "collections", "variants"}, experiment=name)
    enabled = table.get("enabled", True)
    if not isinstance(enabled, bool):
        raise ExperimentConfigError(
            source, f"must be true or false, got {enabled!r}", experiment=name, field_name="enabled"
        )
    description = _text(source, table, "description", experiment=name)
    collections = _collections(source, name, table.get("collections", []))
    raw = table.get("variants")
    if not isinstance(raw, list) or not raw or not all(isinstance(v, dict) for v in raw):
        raise ExperimentConfigError(
            source, "needs at least one [[experiments.variants]] table", experiment=name, field_name="variants"
        )
    if len(raw) > MAX_VARIANTS:
        raise ExperimentConfigError(
            source, f"{len(raw)} variants; the limit is {MAX_VARIANTS}", experiment=name, field_name="variants"
        )
    variants: list[Variant] = []
    for position, variant_table in enumerate(raw):
        variant = _variant(source, name, position, variant_table, templates)
        if any(v.name == variant.name for v in variants):
            raise ExperimentConfigError(
                source,
                "the name is used by another variant of this experiment",
                experiment=name,
                variant=variant.name,
                field_name="name",
            )
        variants.append(variant)
    experiment = Experiment(name, tuple(variants), description, enabled, collections)
    _check_ratios(source, experiment)
    _check_variant_collections(source, experiment)
    return experiment


def _variant(source: str, experiment: str, position: int, table: dict[str, Any], templates: dict[str, str]) -> Variant:
    name = table.get("name")
    if not isinstance(name, str) or not IDENTIFIER.fullmatch(name):
        raise ExperimentConfigError(
            source,
            f"variant #{position + 1}: 'name' must be an identifier (letters, digits, underscores), got {name!r}",
            experiment=experiment,
            field_name="name",
        )
    where = {"experiment": experiment, "variant": name}
    _unknown_keys(source, table, {"name", "ratio", "description", *SETTING_CHECKS}, **where)
    ratio = table.get("ratio")
    if isinstance(ratio, bool) or not isinstance(ratio, int | float) or not 0.0 <= ratio <= 1.0 or math.isnan(ratio):
        raise ExperimentConfigError(source, f"must be a number from 0 to 1, got {ratio!r}", field_name="ratio", **where)
    values: dict[str, Any] = {}
    for key, check in SETTING_CHECKS.items():
        if key in table:
            problem = check(table[key])
            if problem:
                raise ExperimentConfigError(source, problem, field_name=key, **where)
            values[key] = table[key]
    _resolve_template(source, values, templates, where)
    _check_variant_fields(source, values, where)
    settings = VariantSettings(**values)
    return Variant(name, float(ratio), settings, _text(source, table, "description", **where))


def _resolve_template(source: str, values: dict[str, Any], templates: dict[str, str], where: dict[str, str]) -> None:
    """A template is a name (from [templates], or "default") or inline text with braces."""
    given = values.get("prompt_template")
    if given is None:
        return
    if given == DEFAULT_TEMPLATE:
        del values["prompt_template"]
        return
    if "{" not in given and "}" not in given:
        if given not in templates:
            known = ", ".join([DEFAULT_TEMPLATE, *templates])
            raise ExperimentConfigError(
                source, f"no template named {given!r} (known: {known})", field_name="prompt_template", **where
            )
        values["prompt_template"], values["prompt_template_name"] = templates[given], given
        return
    problem = template_problem(given)
    if problem:
        raise ExperimentConfigError(source, f"the template {problem}", field_name="prompt_template", **where)
    values["prompt_template_name"] = "inline"


def _check_variant_fields(source: str, values: dict[str, Any], where: dict[str, str]) -> None:
    chunked = "chunk_tokens" in values or "overlap_tokens" in values
    if chunked and "collection" not in values:
        raise ExperimentConfigError(
            source,
            "a chunking variant reads its own collection: set 'collection' too",
            field_name="chunk_tokens" if "chunk_tokens" in values else "overlap_tokens",
            **where,
        )
    if "overlap_tokens" in values and "chunk_tokens" not in values:
        raise ExperimentConfigError(source, "set 'chunk_tokens' with it", field_name="overlap_tokens", **where)
    if "overlap_tokens" in values and values["overlap_tokens"] >= values["chunk_tokens"]:
        raise ExperimentConfigError(
            source,
            f"must be less than chunk_tokens ({values['chunk_tokens']}), got {values['overlap_tokens']}",
            field_name="overlap_tokens",
            **where,
        )
    if "top_k" in values and "candidates" in values and values["candidates"] < values["top_k"]:
        raise ExperimentConfigError(
            source,
            f"must be at least top_k ({values['top_k']}), got {values['candidates']}",
            field_name="candidates",
            **where,
        )


def _check_ratios(source: str, experiment: Experiment) -> None:
    total = math.fsum(v.ratio for v in experiment.variants)
    if abs(total - 1.0) > RATIO_TOLERANCE:
        shares = ", ".join(f"{v.name}={v.ratio}" for v in experiment.variants)
        raise ExperimentConfigError(
            source,
            f"the variants' ratios sum to {total:.6g}, not 1 ({shares})",
            experiment=experiment.name,
            field_name="ratio",
        )


def _check_variant_collections(source: str, experiment: Experiment) -> None:
    """A collection holds one chunking, and a covered collection is not re-chunked."""
    chunking: dict[str, tuple[int | None, int | None]] = {}
    for variant in experiment.variants:
        settings = variant.settings
        if settings.collection is None:
            continue
        mine = (settings.chunk_tokens, settings.overlap_tokens)
        if settings.chunk_tokens is not None and settings.collection in experiment.collections:
            raise ExperimentConfigError(
                source,
                f"a chunking variant needs a collection of its own, not the covered {settings.collection!r}",
                experiment=experiment.name,
                variant=variant.name,
                field_name="collection",
            )
        if chunking.setdefault(settings.collection, mine) != mine:
            raise ExperimentConfigError(
                source,
                f"collection {settings.collection!r} is read by another variant with different chunking",
                experiment=experiment.name,
                variant=variant.name,
                field_name="collection",
            )


def _check_coverage(source: str, experiments: list[Experiment]) -> None:
    owner: dict[str, str] = {}
    catch_all = ""
    for experiment in (e for e in experiments if e.enabled):
        if not experiment.collections:
            if catch_all:
                raise ExperimentConfigError(
                    source,
                    f"covers every query, as enabled experiment {catch_all!r} does: list 'collections' or disable one",
                    experiment=experiment.name,
                    field_name="collections",
                )
            catch_all = experiment.name
        for name in experiment.collections:
            if name in owner:
                raise ExperimentConfigError(
                    source,
                    f"collection {name!r} is covered by enabled experiment {owner[name]!r} too",
                    experiment=experiment.name,
                    field_name="collections",
                )
            owner[name] = experiment.name


def _collections(source: str, experiment: str, raw: Any) -> tuple[str, ...]:
    if not isinstance(raw, list) or not all(isinstance(c, str) and IDENTIFIER.fullmatch(c) for c in raw):
        raise ExperimentConfigError(
            source, f"must be a list of collection names, got {raw!r}", experiment=experiment, field_name="collections"
        )
    if len(set(raw)) != len(raw):
        raise ExperimentConfigError(source, "lists a collection twice", experiment=experiment, field_name="collections")
    return tuple(raw)


def _text(source: str, table: Mapping[str, Any], key: str, **where: str) -> str:
    value = table.get(key, "")
    if not isinstance(value, str):
        raise ExperimentConfigError(source, f"must be a string, got {value!r}", field_name=key, **where)
    return value


def _unknown_keys(source: str, table: Mapping[str, Any], known: set[str], **where: str) -> None:
    unknown = sorted(set(table) - known)
    if unknown:
        raise ExperimentConfigError(
            source,
            f"unknown setting(s) {', '.join(unknown)}; known: {', '.join(sorted(known))}",
            field_name=unknown[0],
            **where,
        )
