"""A folder as a source (in Kubernetes, a mounted volume): every file under it that the
include/exclude globs keep (hidden files never), its change token the file's modification
time and size, its access list from the ``.ragmesh-acl.toml`` sidecar at the folder's root."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from services.orchestrator.core.sources.acl import SIDECAR, Rule, access_for, parse_rules, selected
from services.orchestrator.core.sources.model import (
    ListingFailed,
    ReadFailed,
    SourceDocument,
    SourceEntry,
    SourceSpec,
)


def access_token(access: tuple[str, ...] | None) -> str:
    """A short token of an access list (part of an entry's change token)."""
    return hashlib.sha256("\n".join(access or ()).encode()).hexdigest()[:12]


class FolderReader:
    """Lists and reads the files of one directory tree."""

    def __init__(self, spec: SourceSpec) -> None:
        self.spec = spec
        self.root = Path(spec.path)

    async def listing(self) -> list[SourceEntry]:
        return await asyncio.to_thread(self._list)

    def _rules(self) -> list[Rule]:
        sidecar = self.root / SIDECAR
        if not sidecar.is_file():
            return []
        try:
            return parse_rules(sidecar.read_bytes(), str(sidecar))
        except (OSError, ValueError) as error:
            raise ListingFailed(f"the access rules cannot be read: {error}") from None

    def _list(self) -> list[SourceEntry]:
        if not self.root.is_dir():
            raise ListingFailed(f"{self.root} is not a directory (is the volume mounted?)")
        rules = self._rules()
        entries = []
        try:
            for path in sorted(self.root.rglob("*")):
                relative = path.relative_to(self.root).as_posix()
                if any(part.startswith(".") for part in relative.split("/")) or not path.is_file():
                    continue
                if selected(relative, self.spec.include, self.spec.exclude):
                    stat = path.stat()
                    access = access_for(relative, rules)
                    token = f"{stat.st_mtime_ns}:{stat.st_size}:{access_token(access)}"
                    entries.append(SourceEntry(relative, token, str(path), access))
        except OSError as error:
            raise ListingFailed(f"{self.root} cannot be walked: {error}") from None
        return entries

    async def read(self, entry: SourceEntry) -> SourceDocument:
        path = self.root / entry.key
        try:
            content = await asyncio.to_thread(path.read_bytes)
        except OSError as error:
            raise ReadFailed(f"cannot read it: {error.strerror or error}") from None
        return SourceDocument(entry, content=content, file_name=path.name)
