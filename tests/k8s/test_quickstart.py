"""docs/kubernetes.md's quick start, checked against the manifests: its key step makes a key file
the orchestrators parse, in the Secret they mount, under the name they read, granting the printed
key; every call it makes carries the key."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

from click.testing import CliRunner

from ragmesh.cli.main import cli
from ragmesh.mesh.processes import ROOT
from ragmesh.vocabulary.keys import digest, parse_file
from tests.k8s.conftest import OVERLAYS, Doc, env_of, of_kind

PAGE = ROOT / "docs" / "kubernetes.md"


def quick_start() -> list[str]:
    """The commands of the quick start's code block, continuation lines joined."""
    section = PAGE.read_text(encoding="utf-8").split("## Quick start", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert block is not None, "no bash block in the quick start"
    joined = block.group(1).replace("\\\n", " ")
    return [line.split(" #", 1)[0].strip() for line in joined.splitlines() if line.strip() and not line.startswith("#")]


def _command(lines: list[str], pattern: str) -> str:
    found = [line for line in lines if re.search(pattern, line)]
    assert len(found) == 1, (pattern, found)
    return found[0]


def test_the_key_step_grants_the_printed_key_in_the_secret_the_orchestrators_read(
    rendered: dict[str, list[Doc]], tmp_path: Path
) -> None:
    lines = quick_start()
    overlay = re.search(r"kubectl apply -k k8s/overlays/(\S+)", " ".join(lines))
    assert overlay is not None and overlay.group(1) in OVERLAYS
    keys = re.search(r"\$\((?:\S*/)?ragmesh (keys new [^)]*)\)", _command(lines, r"ragmesh keys new"))
    assert keys is not None
    args = shlex.split(keys.group(1))
    file_name = args[args.index("--append") + 1]
    args[args.index("--append") + 1] = str(tmp_path / file_name)
    done = CliRunner().invoke(cli, args)
    assert done.exit_code == 0, done.output
    key = done.stdout.strip()
    assert [g.sha256 for g in parse_file(tmp_path / file_name)] == [digest(key)]
    secret = re.search(r"create secret generic (\S+) --from-file=(\S+)", _command(lines, r"create secret generic"))
    assert secret is not None and secret.group(2) == file_name
    pod = of_kind(rendered[overlay.group(1)], "Deployment")["orchestrator"]["spec"]["template"]["spec"]
    path = Path(env_of(pod["containers"][0])["RAGMESH_ORCHESTRATOR_AUTH_KEYS_FILE"]["value"])
    (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if Path(m["mountPath"]) == path.parent]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    assert volume["secret"]["secretName"] == secret.group(1), "the Secret the orchestrators mount"
    assert path.name == file_name, "--from-file names the key the orchestrators read"


def test_every_call_of_the_quick_start_sends_the_key() -> None:
    calls = [line for line in quick_start() if line.startswith(("curl", "grpcurl"))]
    assert calls, "the quick start calls the mesh"
    for line in calls:
        assert "authorization: Bearer $RAGMESH_API_KEY" in line, line
    exported = _command(quick_start(), r"export RAGMESH_API_KEY=")
    assert "ragmesh keys new" in exported  # the ragmesh commands after it read $RAGMESH_API_KEY
