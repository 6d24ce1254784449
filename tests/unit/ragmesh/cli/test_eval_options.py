"""``ragmesh eval``'s options, settled before anything is indexed: where the LLM judge is (the
internal listener of the mesh `ragmesh up` started, from its mesh.json, else --judge), and the
--grid settings."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ragmesh.cli.eval_steps import judge_location
from ragmesh.cli.main import cli
from ragmesh.eval import shipped
from ragmesh.mesh.state import known_mesh

UNREACHABLE = "127.0.0.1:1"


def _options(state: Path, judge: str | None = None) -> dict[str, object]:
    return {"mesh_state": state, "judge_target": judge}


def _state(path: Path, address: str, tls: dict[str, str] | None = None) -> Path:
    path.write_text(json.dumps({"address": address, "internal_address": "127.0.0.1:8081", "internal_tls": tls}))
    return path


def test_the_judge_is_the_internal_listener_of_the_mesh_up_started(tmp_path: Path) -> None:
    state = _state(tmp_path / "mesh.json", "127.0.0.1:8080")
    assert judge_location("localhost:8080", _options(state)) == ("127.0.0.1:8081", None)
    assert judge_location("127.0.0.1:8080", _options(tmp_path)) == ("127.0.0.1:8081", None)  # the log directory
    assert judge_location("127.0.0.1:8080", _options(state, "127.0.0.1:50054")) == ("127.0.0.1:50054", None)


def test_behind_mtls_the_judge_presents_the_certificate_mesh_json_names(tmp_path: Path) -> None:
    files = {"ca": "/c/ca.pem", "cert": "/c/service.pem", "key": "/c/service-key.pem"}
    state = _state(tmp_path / "mesh.json", "127.0.0.1:8080", files)
    for options in (_options(state), _options(state, "localhost:8081")):
        target, tls = judge_location("127.0.0.1:8080", options)
        assert target in ("127.0.0.1:8081", "localhost:8081") and tls is not None
        assert tls.files() == files


def test_another_mesh_or_none_needs_judge(tmp_path: Path) -> None:
    state = _state(tmp_path / "mesh.json", "127.0.0.1:9999")
    for path in (state, tmp_path / "missing.json"):
        with pytest.raises(click.UsageError, match=r"routes the orchestrator only\. Give --judge"):
            judge_location("127.0.0.1:8080", _options(path))
    (tmp_path / "broken.json").write_text("{not json")
    assert known_mesh(tmp_path / "broken.json") is None


def _eval(*args: str) -> tuple[int, str]:
    done = CliRunner().invoke(cli, ["--address", UNREACHABLE, "--timeout", "5", "eval", str(shipped.OUT), *args])
    return done.exit_code, done.output


def test_a_missing_judge_is_a_usage_error_before_any_call(tmp_path: Path) -> None:
    code, output = _eval("--mesh-state", str(tmp_path / "none.json"), "--answers", "2", "--out", str(tmp_path))
    assert code == 2 and "Give --judge" in output  # exit 3 would mean it called the mesh first
    code, output = _eval("--mesh-state", str(tmp_path / "none.json"), "--retrieval-only", "--out", str(tmp_path))
    assert code == 3 and "UNAVAILABLE" in output  # no judge needed: it went on and found no mesh


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--grid", "flavour=a,b"], "not a variant setting"),
        (["--grid", "rerank=none,mmr", "--variant", "b"], "drop --variant"),
        (["--grid", "chunk_tokens=8"], "must be between 16 and 8192"),
    ],
)
def test_grid_options_are_checked_before_any_call(args: list[str], message: str, tmp_path: Path) -> None:
    code, output = _eval(*args, "--retrieval-only", "--out", str(tmp_path))
    assert code == 2 and message in output
