"""Check the contract in protos/: ``buf lint`` (buf.yaml's rules) and ``buf breaking`` against a
baseline — by default the last commit on main that changed protos/.

``python -m scripts.check_contract`` (``make contract``, part of ``make test``). The baseline:
``--against REF`` (or ``$RAGMESH_CONTRACT_BASELINE``: a tag, a branch, a commit), else the last
commit that changed protos/ up to where this branch left main (``git merge-base HEAD main``), so a
branch is compared with what callers of main have. The baseline's protos/ are taken from git and
built beside the current buf.yaml and third_party/, so a baseline from before buf.yaml builds too.

A baseline from before the contract was checked (no buf.yaml) had no ``go_package``,
``java_package`` or ``java_multiple_files``: setting them for the first time is what this check
was introduced with, so against such a baseline those three file-option rules are skipped; every
other rule of buf.yaml applies.

Exit codes: 0 clean, 1 a lint or breaking finding (printed by buf), 2 the check cannot run (no buf,
no git history, an unknown baseline).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BUF = ROOT / "clients" / "node" / "node_modules" / ".bin" / "buf"
MAIN_BRANCHES = ("main", "origin/main")
#: Rules a pre-contract baseline cannot satisfy: the options were unset before it.
FIRST_DECLARED = ("FILE_SAME_GO_PACKAGE", "FILE_SAME_JAVA_PACKAGE", "FILE_SAME_JAVA_MULTIPLE_FILES")
TIMEOUT_SECONDS = 300


class ContractError(RuntimeError):
    """The check cannot run (the message says what to do)."""


def git(*args: str) -> str:
    """Output of ``git ARGS`` in the repository; ContractError naming the command on failure."""
    done = subprocess.run(
        ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
    )
    if done.returncode != 0:
        raise ContractError(f"git {' '.join(args)}: {done.stderr.strip() or 'failed'}")
    return done.stdout.strip()


def _exists(ref: str) -> bool:
    try:
        git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except ContractError:
        return False
    return True


def baseline(requested: str | None) -> str:
    """The commit to compare with: ``requested``, else the last one that changed protos/ up to
    the merge base with main (HEAD's history when there is no main branch)."""
    if requested:
        if not _exists(requested):
            raise ContractError(f"baseline {requested!r} is not a commit, branch or tag of this repository")
        return git("rev-parse", f"{requested}^{{commit}}")
    main = next((ref for ref in MAIN_BRANCHES if _exists(ref)), None)
    base = git("merge-base", "HEAD", main) if main else "HEAD"
    found = git("log", "-1", "--format=%H", base, "--", "protos")
    if not found:
        raise ContractError(
            "no commit that changed protos/ in this clone's history (a shallow clone?): "
            "fetch the history, or name a baseline with --against REF"
        )
    return found


def baseline_tree(commit: str, into: Path) -> bool:
    """Write the baseline's protos/ under ``into`` beside the current buf.yaml and third_party/;
    True when the baseline had a buf.yaml of its own."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "protos"],
        cwd=ROOT,
        capture_output=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    if archive.returncode != 0:
        raise ContractError(f"git archive {commit} protos: {archive.stderr.decode(errors='replace').strip()}")
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    shutil.copy(ROOT / "buf.yaml", into / "buf.yaml")
    shutil.copytree(ROOT / "third_party", into / "third_party")
    try:
        git("cat-file", "-e", f"{commit}:buf.yaml")
    except ContractError:
        return False
    return True


def breaking_config(checked_before: bool) -> str | None:
    """buf.yaml's config with the first-declared rules skipped (JSON for ``--config``), or None
    to use buf.yaml as it is."""
    if checked_before:
        return None
    config = yaml.safe_load((ROOT / "buf.yaml").read_text())
    config["breaking"]["except"] = [*config["breaking"].get("except", []), *FIRST_DECLARED]
    return json.dumps(config)


def buf(*args: str) -> int:
    """Run buf from the repository root; its exit code (buf prints its findings)."""
    if not BUF.exists():
        raise ContractError(f"{BUF.relative_to(ROOT)} is missing: run `make node-deps` (npm ci in clients/node)")
    return subprocess.run([str(BUF), *args], cwd=ROOT, timeout=TIMEOUT_SECONDS, check=False).returncode


def check(requested: str | None) -> int:
    """Lint, then breaking against the baseline; 0 when both are clean."""
    commit = baseline(requested)
    subject = git("log", "-1", "--format=%h %s", commit)
    failed = buf("lint") != 0
    print("buf lint:", "findings above" if failed else "clean")
    with tempfile.TemporaryDirectory(prefix="ragmesh-contract-") as tmp:
        checked_before = baseline_tree(commit, Path(tmp))
        args = ["breaking", "--against", tmp]
        if (config := breaking_config(checked_before)) is not None:
            args += ["--config", config]
        broken = buf(*args) != 0
    skipped = "" if checked_before else f" (a baseline from before buf.yaml: {', '.join(FIRST_DECLARED)} skipped)"
    print(f"buf breaking against {subject}{skipped}:", "findings above" if broken else "compatible")
    return 1 if failed or broken else 0


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--against",
        default=os.environ.get("RAGMESH_CONTRACT_BASELINE") or None,
        help="baseline commit, branch or tag [$RAGMESH_CONTRACT_BASELINE, else the last change of protos/ on main]",
    )
    args = parser.parse_args()
    try:
        sys.exit(check(args.against))
    except (ContractError, subprocess.TimeoutExpired) as error:
        print(f"check_contract: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
