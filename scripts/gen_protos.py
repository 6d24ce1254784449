"""Generate gen/ from protos/: messages, gRPC stubs, .pyi type stubs and a descriptor set.

``python -m scripts.gen_protos gen`` writes the files; ``--check gen`` generates into a
temporary directory and exits 1 listing every file that differs, so CI notices a
``protos/`` change that was not followed by ``make proto``.
"""

from __future__ import annotations

import argparse
import filecmp
import os
import sys
import tempfile
from pathlib import Path

import google.api
from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTO_DIR = ROOT / "protos"
PACKAGE_DIR = Path("ragmesh") / "v1"
DESCRIPTOR_SET = "ragmesh.pb"
INIT_TEXT = '"""Generated gRPC contracts of ragmesh (package ragmesh.v1); regenerate with `make proto`."""\n'


def generate(out: Path) -> None:
    """Run protoc with the python, grpc, mypy and mypy-grpc plugins into ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    googleapis = Path(google.api.__path__[0]).parent.parent  # holds google/api/*.proto
    protos = sorted(str(p.relative_to(PROTO_DIR)) for p in (PROTO_DIR / PACKAGE_DIR).glob("*.proto"))
    # protoc finds its plugins (protoc-gen-mypy) on PATH: the venv's bin directory.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    args = [
        "protoc",
        f"-I{PROTO_DIR}",
        f"-I{googleapis}",
        f"-I{Path(protoc.__file__).parent / '_proto'}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        f"--mypy_out={out}",
        f"--mypy_grpc_out={out}",
        "--include_imports",
        f"--descriptor_set_out={out / DESCRIPTOR_SET}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    (out / PACKAGE_DIR / "__init__.py").write_text(INIT_TEXT)


def differences(expected: Path, actual: Path) -> list[str]:
    """Relative paths that are missing, extra or different between two trees."""
    found: list[str] = []
    names = {p.relative_to(expected) for p in expected.rglob("*") if p.is_file()}
    names |= {p.relative_to(actual) for p in actual.rglob("*") if p.is_file() and "__pycache__" not in p.parts}
    for name in sorted(names):
        left, right = expected / name, actual / name
        if not left.is_file() or not right.is_file() or not filecmp.cmp(left, right, shallow=False):
            found.append(str(name))
    return found


def main() -> None:
    """Generate, or check that the committed output is current."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out", type=Path, help="output directory (gen)")
    parser.add_argument("--check", action="store_true", help="compare instead of writing")
    args = parser.parse_args()
    if not args.check:
        generate(args.out)
        return
    with tempfile.TemporaryDirectory() as tmp:
        generate(Path(tmp))
        stale = differences(Path(tmp), args.out)
    if stale:
        print("gen/ is out of date with protos/ — run `make proto` and commit:", *stale, sep="\n  ")
        raise SystemExit(1)
    print("gen/ is in sync with protos/")


if __name__ == "__main__":
    main()
