"""``ragmesh keys new --append FILE``: the Kubernetes quick start's key step — the key alone on
stdout, its grant in a key file the orchestrator parses, nothing written on a bad file."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner

from ragmesh.cli.main import cli
from ragmesh.vocabulary.keys import KEY_PREFIX, digest, parse_file


def _new(path: Path, tenant: str, *extra: str) -> str:
    done = CliRunner().invoke(
        cli, ["keys", "new", "--tenant", tenant, "--collections", "*", "--append", str(path), *extra]
    )
    assert done.exit_code == 0, done.output
    return done.stdout.strip()


def test_appended_keys_are_granted_by_the_file(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    first, second = _new(path, "demo"), _new(path, "other", "--read-only")
    assert first.startswith(KEY_PREFIX) and "\n" not in first  # stdout is the key alone
    grants = parse_file(path)
    assert [(g.sha256, g.tenant, g.write) for g in grants] == [
        (digest(first), "demo", True),
        (digest(second), "other", False),
    ]
    assert KEY_PREFIX not in path.read_text(), "the file holds hashes only"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_a_file_that_cannot_take_an_entry_is_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "keys.toml"
    path.write_text("keys = []\n")  # the base Secret's empty list: [[keys]] cannot follow it
    done = CliRunner().invoke(cli, ["keys", "new", "--tenant", "demo", "--collections", "*", "--append", str(path)])
    assert done.exit_code == 2 and "cannot take the new key" in done.output
    assert path.read_text() == "keys = []\n"
    assert [p.name for p in tmp_path.iterdir()] == ["keys.toml"], "no temporary file left behind"
