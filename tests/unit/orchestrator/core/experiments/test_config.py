"""The experiments file: the shipped example loads, every kind of mistake is an error naming
the experiment, variant and field, coverage picks one experiment per query, and the
collection check and ingestion targets."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from ragmesh.vocabulary.experiments.model import ExperimentConfigError, ingest_targets
from ragmesh.vocabulary.experiments.parsing import load_experiments, parse_experiments
from ragmesh.vocabulary.experiments.settings import render_prompt
from services.common.config import ConfigError, Env
from services.orchestrator.core.experiments.config import ExperimentSettings

EXAMPLE = Path(__file__).resolve().parents[5] / "corpus" / "experiments.example.toml"


def _base() -> dict[str, Any]:
    return {
        "templates": {"short": "{sources}\n{question}"},
        "experiments": [
            {
                "name": "exp",
                "collections": ["docs"],
                "variants": [
                    {"name": "control", "ratio": 0.5},
                    {"name": "treat", "ratio": 0.5, "top_k": 8, "rerank": "mmr"},
                ],
            }
        ],
    }


def _treat(**settings: Any) -> dict[str, Any]:
    data = _base()
    data["experiments"][0]["variants"][1].update(settings)
    return data


def _experiment(**fields: Any) -> dict[str, Any]:
    data = _base()
    data["experiments"][0].update(fields)
    return data


def _two_experiments(**second: Any) -> dict[str, Any]:
    data = _base()
    other = copy.deepcopy(data["experiments"][0])
    other.update({"name": "other", **second})
    data["experiments"].append(other)
    return data


# (data, experiment, variant, field, a phrase of the message)
CASES: list[tuple[dict[str, Any], str, str, str, str]] = [
    (_treat(ratio=0.4), "exp", "", "ratio", "sum to 0.9"),
    (_treat(ratio=1.5), "exp", "treat", "ratio", "from 0 to 1"),
    (_treat(ratio="half"), "exp", "treat", "ratio", "from 0 to 1"),
    (_treat(name="control"), "exp", "control", "name", "used by another variant"),
    (_treat(name="bad name"), "exp", "", "name", "identifier"),
    (_treat(topk=3), "exp", "treat", "topk", "unknown setting"),
    (_treat(top_k=0), "exp", "treat", "top_k", "between 1 and 50"),
    (_treat(top_k=True), "exp", "treat", "top_k", "integer"),
    (_treat(candidates=300), "exp", "treat", "candidates", "between 1 and 200"),
    (_treat(top_k=10, candidates=5), "exp", "treat", "candidates", "at least top_k"),
    (_treat(rerank="bm25"), "exp", "treat", "rerank", "none, mmr, cross_encoder"),
    (_treat(mmr_lambda=1.2), "exp", "treat", "mmr_lambda", "at most 1"),
    (_treat(search_mode="vector"), "exp", "treat", "search_mode", "dense, sparse, hybrid"),
    (_treat(temperature=-0.1), "exp", "treat", "temperature", "at least 0"),
    (_treat(top_p=0.0), "exp", "treat", "top_p", "above 0"),
    (_treat(max_new_tokens=0), "exp", "treat", "max_new_tokens", "between 1"),
    (_treat(seed=-1), "exp", "treat", "seed", "between 0"),
    (_treat(collection="1bad"), "exp", "treat", "collection", "letters, digits"),
    (_treat(chunk_tokens=128), "exp", "treat", "chunk_tokens", "own collection"),
    (_treat(chunk_tokens=8, collection="c8"), "exp", "treat", "chunk_tokens", "between 16"),
    (_treat(chunk_tokens=64, overlap_tokens=64, collection="c64"), "exp", "treat", "overlap_tokens", "less than"),
    (_treat(overlap_tokens=8, collection="c64"), "exp", "treat", "overlap_tokens", "chunk_tokens"),
    (_treat(chunk_tokens=64, collection="docs"), "exp", "treat", "collection", "of its own"),
    (_treat(prompt_template="missing"), "exp", "treat", "prompt_template", "no template named"),
    (_treat(prompt_template="Q: {question}"), "exp", "treat", "prompt_template", "{sources}"),
    (_treat(prompt_template="{sources} {question} {answer}"), "exp", "treat", "prompt_template", "unknown"),
    (_treat(prompt_template="{sources!r} {question}"), "exp", "treat", "prompt_template", "format spec"),
    (_treat(prompt_template="{sources} {question"), "exp", "treat", "prompt_template", "not a valid"),
    (_experiment(variants=[]), "exp", "", "variants", "at least one"),
    (_experiment(enabled="yes"), "exp", "", "enabled", "true or false"),
    (_experiment(collections=["docs", "docs"]), "exp", "", "collections", "twice"),
    (_experiment(collections="docs"), "exp", "", "collections", "list"),
    (_experiment(owner="me"), "exp", "", "owner", "unknown setting"),
    (_two_experiments(name="exp"), "exp", "", "name", "another experiment"),
    (_two_experiments(name="other2"), "other2", "", "collections", "covered by enabled experiment 'exp'"),
]


@pytest.mark.parametrize(("data", "experiment", "variant", "field", "phrase"), CASES)
def test_every_config_error_names_experiment_variant_and_field(
    data: dict[str, Any], experiment: str, variant: str, field: str, phrase: str
) -> None:
    with pytest.raises(ExperimentConfigError) as raised:
        parse_experiments(data, "exp.toml")
    error = raised.value
    message = str(error)
    assert (error.experiment, error.variant, error.field_name) == (experiment, variant, field), message
    assert f"experiment {experiment!r}" in message and f"field {field!r}" in message
    assert not variant or f"variant {variant!r}" in message
    assert phrase in message, message
    assert message.startswith("RAGMESH_ORCHESTRATOR_EXPERIMENTS_FILE (exp.toml)")


def test_the_shipped_example_loads_with_templates_resolved() -> None:
    config = load_experiments(EXAMPLE)
    rerank = config.get("rerank_depth")
    assert rerank is not None and rerank.control.name == "control"
    terse = rerank.variant("terse_hybrid")
    assert terse is not None and terse.settings.prompt_template_name == "terse"
    assert render_prompt(terse.settings.prompt_template or "", "[1] a {brace}", "why?").endswith("Question: why?")
    mmr = rerank.variant("mmr20")
    assert mmr is not None and mmr.settings.query_overrides() == {"candidates": 20, "rerank": "mmr", "mmr_lambda": 0.6}
    assert terse.settings.sampling_overrides() == {"max_new_tokens": 96}


def test_one_experiment_per_query_named_collections_before_the_catch_all() -> None:
    data = _two_experiments(collections=[])
    config = parse_experiments(data)
    assert config.for_collection("docs").name == "exp"  # type: ignore[union-attr]
    assert config.for_collection("anything").name == "other"  # type: ignore[union-attr]
    data["experiments"][0]["enabled"] = False
    assert parse_experiments(data).for_collection("docs").name == "other"  # type: ignore[union-attr]
    data["experiments"][1]["enabled"] = False
    assert parse_experiments(data).for_collection("docs") is None


def test_two_enabled_catch_alls_are_an_error() -> None:
    data = _experiment(collections=[])
    other = copy.deepcopy(data["experiments"][0])
    other["name"] = "other"
    data["experiments"].append(other)
    with pytest.raises(ExperimentConfigError, match="covers every query") as raised:
        parse_experiments(data)
    assert raised.value.experiment == "other"


def test_enabled_experiments_must_name_existing_collections() -> None:
    config = parse_experiments(_treat(collection="docs_small"))
    with pytest.raises(ExperimentConfigError) as raised:
        config.check_collections({"docs"})
    assert (raised.value.experiment, raised.value.variant, raised.value.field_name) == ("exp", "treat", "collection")
    with pytest.raises(ExperimentConfigError, match="'docs' does not exist") as covered:
        config.check_collections({"docs_small"})
    assert covered.value.field_name == "collections"
    config.check_collections({"docs", "docs_small"})
    disabled = _treat(collection="docs_small")
    disabled["experiments"][0]["enabled"] = False
    parse_experiments(disabled).check_collections(set())  # a disabled experiment is not checked


def test_ingest_targets_list_each_collection_with_its_chunking() -> None:
    data = _treat(collection="docs_c64", chunk_tokens=64, overlap_tokens=8)
    data["experiments"][0]["variants"].append(
        {"name": "same", "ratio": 0.0, "collection": "docs_c64", "chunk_tokens": 64, "overlap_tokens": 8}
    )
    experiment = parse_experiments(data).get("exp")
    assert experiment is not None
    targets = ingest_targets(experiment, "docs", 200, 32)
    assert [(t.collection, t.chunk_tokens, t.overlap_tokens, t.variants) for t in targets] == [
        ("docs", 200, 32, ("control",)),
        ("docs_c64", 64, 8, ("treat", "same")),
    ]
    data["experiments"][0]["variants"][2]["chunk_tokens"] = 128
    with pytest.raises(ExperimentConfigError, match="different chunking") as raised:
        parse_experiments(data)
    assert raised.value.variant == "same"


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("[[experiments]\nname = 1\n")
    with pytest.raises(ExperimentConfigError, match=r"broken\.toml.*not valid TOML"):
        load_experiments(broken)
    missing = {"RAGMESH_ORCHESTRATOR_EXPERIMENTS_FILE": str(tmp_path / "nope.toml")}
    with pytest.raises(ConfigError, match="RAGMESH_ORCHESTRATOR_EXPERIMENTS_FILE: no such file"):
        ExperimentSettings.from_env(Env("orchestrator", missing))
    with pytest.raises(ConfigError, match="RAGMESH_ORCHESTRATOR_EXPERIMENT_MAX_RECORDS"):
        ExperimentSettings.from_env(Env("orchestrator", {"RAGMESH_ORCHESTRATOR_EXPERIMENT_MAX_RECORDS": "3"}))
    settings = ExperimentSettings.from_env(Env("orchestrator", {"RAGMESH_ORCHESTRATOR_EXPERIMENTS_FILE": str(EXAMPLE)}))
    assert settings.load().get("chunking") is not None and ExperimentSettings().load().experiments == ()
