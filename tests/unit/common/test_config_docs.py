"""docs/configuration.md is what the config classes read: regenerated here and compared, every
setting named in the source read by some profile, none without a meaning."""

from __future__ import annotations

import ast
import tomllib
from typing import Any

import pytest

from ragmesh.mesh.processes import ROOT
from scripts import gen_config_docs

TYPED = {"text", "choice", "integer", "number", "flag", "address", "raw"}


def _meanings() -> dict[str, Any]:
    return tomllib.loads(gen_config_docs.MEANINGS.read_text(encoding="utf-8"))


def test_the_committed_page_is_what_the_config_classes_read() -> None:
    page = gen_config_docs.render(gen_config_docs.reads(), _meanings())
    assert (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8") == page, "run `make config-docs`"


def _fields_in_source() -> set[str]:
    """Every ``env.<kind>("field", ...)`` (and ``f"{field}_ca"``-style field) named in services/."""
    found: set[str] = set()
    for path in (ROOT / "services").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in TYPED
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "env"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value.upper())
    return found


def test_every_setting_in_the_source_is_read_by_a_profile() -> None:
    read = {name for settings in gen_config_docs.reads().values() for name in settings}
    named = _fields_in_source()
    assert len(named) > 80  # the walk found the configs
    assert named - read == set(), "a setting read only on a path no profile takes: add a profile"


def test_a_setting_without_a_meaning_stops_the_page() -> None:
    meanings = _meanings()
    del meanings["retriever"]["RRF_K"]
    with pytest.raises(SystemExit, match="RAGMESH_RETRIEVER_RRF_K has no meaning"):
        gen_config_docs.render(gen_config_docs.reads(), meanings)
