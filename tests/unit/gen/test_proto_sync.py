"""gen/ must be exactly what protos/ generate (CI fails on a forgotten `make proto`)."""

from __future__ import annotations

from pathlib import Path

from ragmesh.mesh.processes import ROOT
from scripts.gen_protos import differences, generate


def test_generated_code_is_in_sync_with_protos(tmp_path: Path) -> None:
    generate(tmp_path)
    assert differences(tmp_path, ROOT / "gen") == []


def test_the_check_notices_a_changed_file(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh"
    generate(fresh)
    stale = tmp_path / "stale"
    generate(stale)
    (stale / "ragmesh" / "v1" / "common_pb2.py").write_text("# edited by hand\n")
    assert differences(fresh, stale) == ["ragmesh/v1/common_pb2.py"]
