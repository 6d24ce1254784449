"""Readers of the four kinds of source (the core's :class:`SourceReader` port): a folder, a git
repository (the git CLI), an S3-compatible bucket (boto3) and a web site (httpx, robots.txt,
conditional GETs, trafilatura for the main content)."""

from __future__ import annotations

from pathlib import Path

from services.orchestrator.core.sources.model import SourceKind, SourceReader, SourceSpec


def reader_for(spec: SourceSpec, cache_dir: Path) -> SourceReader:
    """The reader of ``spec``; working copies (git mirrors, web validators) under ``cache_dir``."""
    if spec.kind is SourceKind.FOLDER:
        from services.orchestrator.adapters.sources.folder import FolderReader

        return FolderReader(spec)
    if spec.kind is SourceKind.GIT:
        from services.orchestrator.adapters.sources.git import GitReader

        return GitReader(spec, cache_dir / "git")
    if spec.kind is SourceKind.S3:
        from services.orchestrator.adapters.sources.s3 import S3Reader

        return S3Reader(spec)
    from services.orchestrator.adapters.sources.web import WebReader

    return WebReader(spec, cache_dir / "web")
