"""Rules of the repository's shape, checked so they hold after every change: small files and
functions (docs/architecture.md), and an installable package list that matches the tree."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("services", "ragmesh", "bench", "scripts", "tests")
MAX_FILE_LINES = 300
MAX_FUNCTION_LINES = 50


def _python_files() -> list[Path]:
    return sorted(p for top in SOURCES for p in (ROOT / top).rglob("*.py"))


def test_files_are_small() -> None:
    files = _python_files()
    assert len(files) > 100  # the walk found the tree
    large = {str(p.relative_to(ROOT)): n for p in files if (n := p.read_text().count("\n")) > MAX_FILE_LINES}
    assert large == {}


def test_functions_are_small() -> None:
    long: dict[str, int] = {}
    for path in _python_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno is not None:
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"] = lines
    assert long == {}


def test_every_package_is_installed() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("services", "ragmesh")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert found and found <= listed, sorted(found - listed)
    assert "ragmesh.v1" in listed  # the contract, installed from gen/
