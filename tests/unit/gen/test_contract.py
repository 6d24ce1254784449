"""The contract's checks (buf.yaml, scripts/check_contract.py): the options every caller's
generator needs, the vendored googleapis files, and buf catching a breaking change while
accepting additions — run on copies of protos/ in a temporary workspace."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import google.api
import pytest
from google.protobuf import descriptor_pb2

from ragmesh.mesh.processes import ROOT
from scripts import check_contract

PROTOS = sorted((ROOT / "protos" / "ragmesh" / "v1").glob("*.proto"))
ADDED_RPC = """service OrchestratorService {
  // Lists a collection's tags.
  rpc ListTags(OrchestratorServiceListTagsRequest) returns (OrchestratorServiceListTagsResponse);"""
ADDED_MESSAGES = """
// Request of ListTags.
message OrchestratorServiceListTagsRequest {
  // The collection.
  string collection = 1;
}

// Response of ListTags.
message OrchestratorServiceListTagsResponse {
  // Tag names.
  repeated string tags = 1;
}
"""


def _buf(workspace: Path, *args: str) -> subprocess.CompletedProcess[str]:
    assert check_contract.BUF.exists(), "buf is missing: run `make node-deps`"
    return subprocess.run(
        [str(check_contract.BUF), *args], cwd=workspace, capture_output=True, text=True, timeout=120, check=False
    )


def _workspace(into: Path) -> Path:
    """A copy of the contract: buf.yaml, third_party/ and protos/."""
    into.mkdir()
    shutil.copy(ROOT / "buf.yaml", into)
    shutil.copytree(ROOT / "third_party", into / "third_party")
    shutil.copytree(ROOT / "protos", into / "protos")
    return into


def _edit(workspace: Path, old: str, new: str) -> None:
    path = workspace / "protos" / "ragmesh" / "v1" / "orchestrator.proto"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_every_file_names_its_go_and_java_packages() -> None:
    files = descriptor_pb2.FileDescriptorSet.FromString((ROOT / "gen" / "ragmesh.pb").read_bytes()).file
    ours = [f for f in files if f.package == "ragmesh.v1"]
    assert len(ours) == len(PROTOS) == 5
    for file in ours:
        assert file.options.go_package.endswith("/gen/go/ragmesh/v1;ragmeshv1"), file.name
        assert file.options.java_package == "io.ragmesh.v1" and file.options.java_multiple_files, file.name


def test_the_vendored_googleapis_files_are_the_pinned_packages() -> None:
    package = Path(google.api.__path__[0])
    for name in ("annotations.proto", "http.proto"):
        vendored = ROOT / "third_party" / "googleapis" / "google" / "api" / name
        assert vendored.read_bytes() == (package / name).read_bytes(), name


def test_the_contract_lints_clean() -> None:
    done = _buf(ROOT, "lint")
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_renamed_field_is_breaking_and_an_added_rpc_is_not(tmp_path: Path) -> None:
    baseline = _workspace(tmp_path / "baseline")
    added = _workspace(tmp_path / "added")
    _edit(added, "service OrchestratorService {", ADDED_RPC)
    with (added / "protos" / "ragmesh" / "v1" / "orchestrator.proto").open("a") as proto:
        proto.write(ADDED_MESSAGES)
    done = _buf(added, "breaking", "--against", str(baseline))
    assert done.returncode == 0, done.stdout + done.stderr
    assert _buf(added, "lint").returncode == 0  # standard names lint clean beside the excepted ones
    renamed = _workspace(tmp_path / "renamed")
    _edit(renamed, "string query = 1;", "string question = 1;")
    done = _buf(renamed, "breaking", "--against", str(baseline))
    assert done.returncode != 0 and 'changed name from "query" to "question"' in done.stdout, done.stdout


def test_a_badly_named_addition_fails_the_lint(tmp_path: Path) -> None:
    workspace = _workspace(tmp_path / "ws")
    (workspace / "protos" / "ragmesh" / "v1" / "extra.proto").write_text(
        'syntax = "proto3";\npackage ragmesh.v1;\n'
        'option go_package = "x/ragmeshv1;ragmeshv1";\n'
        "// Doc.\nenum Colour {\n  // Doc.\n  RED = 0;\n}\n"
    )
    done = _buf(workspace, "lint")
    assert done.returncode != 0 and "RED" in done.stdout, done.stdout


def test_the_baseline_is_a_commit_that_changed_protos() -> None:
    commit = check_contract.baseline(None)
    assert check_contract.git("log", "-1", "--format=%H", commit, "--", "protos") == commit
    assert check_contract.baseline("HEAD") == check_contract.git("rev-parse", "HEAD")
    with pytest.raises(check_contract.ContractError, match="not a commit"):
        check_contract.baseline("no-such-ref-anywhere")


def test_a_baseline_from_before_buf_yaml_skips_only_the_first_declared_options() -> None:
    assert check_contract.breaking_config(checked_before=True) is None
    relaxed = check_contract.breaking_config(checked_before=False)
    assert relaxed is not None
    for rule in check_contract.FIRST_DECLARED:
        assert rule in relaxed
    assert '"use": ["FILE"]' in relaxed
