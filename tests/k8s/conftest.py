"""Render every kustomize overlay once per session (``kubectl kustomize``, offline)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from ragmesh.mesh.processes import ROOT

K8S = ROOT / "k8s"
OVERLAYS = ("lite", "cluster", "lite-tracing", "lite-tls")
#: Overlays with the tls component: no cleartext hop, certificates from Secrets.
TLS_OVERLAYS = ("lite-tls",)
PLAIN_OVERLAYS = tuple(o for o in OVERLAYS if o not in TLS_OVERLAYS)
Doc = dict[str, Any]


def kustomize_command() -> list[str]:
    """``kubectl kustomize`` (kustomize is built into kubectl), or a standalone ``kustomize build``."""
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build"]
    pytest.fail("rendering k8s/ needs kubectl (it embeds kustomize) or kustomize on PATH")


def render(directory: Path) -> list[Doc]:
    """The documents ``kustomize build directory`` produces (fails with kustomize's error)."""
    done = subprocess.run([*kustomize_command(), str(directory)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[Doc]]:
    """Every overlay's documents, by overlay name."""
    return {name: render(K8S / "overlays" / name) for name in OVERLAYS}


def of_kind(docs: list[Doc], kind: str) -> dict[str, Doc]:
    """Documents of one kind, by name."""
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def env_of(container: Doc) -> dict[str, Doc]:
    """A container's env entries by name."""
    return {e["name"]: e for e in container.get("env", [])}
