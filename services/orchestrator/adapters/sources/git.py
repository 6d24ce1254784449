"""A git repository as a source, through the git CLI: a mirror clone kept under the cache
directory and fetched at every sync; the branch's tree listed with ``git ls-tree`` (each
file's change token is its blob id, so a file is read again only when a commit changed it —
the comparison ``git diff`` makes); a file read with ``git cat-file``. The sidecar
``.ragmesh-acl.toml`` at the source's root (the sub-path) gives access lists."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from services.orchestrator.adapters.sources.folder import access_token
from services.orchestrator.core.sources.acl import SIDECAR, access_for, parse_rules, selected
from services.orchestrator.core.sources.model import (
    ListingFailed,
    ReadFailed,
    SourceDocument,
    SourceEntry,
    SourceSpec,
)

#: Bound on each git command (a clone of a large repository takes a while).
GIT_SECONDS = 600.0


class GitError(Exception):
    """A git command failed; the message holds its stderr."""


async def git(*args: str, cwd: Path | None = None) -> bytes:
    """Run ``git args`` (bounded by GIT_SECONDS); its stdout, or GitError."""
    process = await asyncio.create_subprocess_exec(
        "git", *args, cwd=cwd, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    try:
        async with asyncio.timeout(GIT_SECONDS):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise GitError(f"git {args[0]} took more than {GIT_SECONDS:.0f}s") from None
    if process.returncode != 0:
        raise GitError(err.decode(errors="replace").strip()[-500:] or f"git {args[0]} failed")
    return out


class GitReader:
    """Lists a branch's files (under a sub-path) and reads them by blob id."""

    def __init__(self, spec: SourceSpec, cache_dir: Path) -> None:
        self.spec = spec
        digest = hashlib.sha256(spec.repository.encode()).hexdigest()[:12]
        self.mirror = cache_dir / f"{spec.name}-{digest}.git"
        self.root = spec.subpath.strip("/")
        self.blobs: dict[str, str] = {}

    async def _fetch(self) -> str:
        """Clone or fetch the mirror; the branch's commit."""
        if not self.mirror.exists():
            self.mirror.parent.mkdir(parents=True, exist_ok=True)
            await git("clone", "--mirror", "--quiet", self.spec.repository, str(self.mirror))
        else:
            await git("remote", "update", "--prune", cwd=self.mirror)
        ref = f"refs/heads/{self.spec.branch}^{{commit}}"
        return (await git("rev-parse", "--verify", ref, cwd=self.mirror)).decode().strip()

    async def listing(self) -> list[SourceEntry]:
        try:
            commit = await self._fetch()
            tree = await git("ls-tree", "-r", "-z", "--full-tree", commit, cwd=self.mirror)
        except (GitError, OSError) as error:
            raise ListingFailed(f"git: {error}") from None
        files: dict[str, str] = {}
        for line in tree.decode().split("\0"):
            if not line:
                continue
            meta, _, path = line.partition("\t")
            mode, kind, blob = meta.split()
            if kind == "blob" and mode != "120000" and (not self.root or path.startswith(self.root + "/")):
                files[path[len(self.root) + 1 :] if self.root else path] = blob
        rules = []
        if SIDECAR in files:
            try:
                rules = parse_rules(await git("cat-file", "blob", files[SIDECAR], cwd=self.mirror), SIDECAR)
            except (GitError, ValueError) as error:
                raise ListingFailed(f"the access rules cannot be read: {error}") from None
        self.blobs = {}
        entries = []
        for relative, blob in sorted(files.items()):
            if selected(relative, self.spec.include, self.spec.exclude):
                access = access_for(relative, rules)
                self.blobs[relative] = blob
                location = (
                    f"{self.spec.repository}@{self.spec.branch}:{'/'.join(p for p in (self.root, relative) if p)}"
                )
                entries.append(SourceEntry(relative, f"{blob}:{access_token(access)}", location, access))
        return entries

    async def read(self, entry: SourceEntry) -> SourceDocument:
        blob = self.blobs.get(entry.key)
        if blob is None:
            raise ReadFailed("not in the last listing")
        try:
            content = await git("cat-file", "blob", blob, cwd=self.mirror)
        except GitError as error:
            raise ReadFailed(f"git: {error}") from None
        return SourceDocument(entry, content=content, file_name=entry.key.rsplit("/", 1)[-1])
