"""Real endpoints for the sources' tests, started by the tests on loopback: a folder, a git
repository made with the git CLI, an S3 API (moto's stand-alone server) driven with boto3, and
a web site served by the standard library's HTTP server. Each can be edited, lose a document,
and go away (so that its listing fails)."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import boto3

from ragmesh.mesh.processes import free_port, stop_process, tied_to_this_process
from services.orchestrator.core.sources.model import SourceKind, SourceSpec
from tests.support.stack import unique_collection

FILES = {
    "docking": "Shuttles dock at bay seven on the lower ring of the station, next to the cargo lift.",
    "crew": "The station cook is named Bartholomew and he bakes bread every morning for the crew.",
    "garden": "Tomatoes grow in the hydroponics lab under violet lamps, tended by the botanist.",
}


_STAMPS = iter(range(10, 1_000_000, 10))


def _touch(path: Path) -> None:
    """A later modification time at every change, seconds apart (Last-Modified has one-second
    steps; two edits within one clock tick must still differ)."""
    stamp = time.time() + next(_STAMPS)
    os.utime(path, (stamp, stamp))


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


class Site:
    """One source's endpoint: ``spec`` to sync it; edit, delete and break it."""

    def __init__(self, kind: SourceKind, root: Path) -> None:
        self.kind, self.root = kind, root
        self.spec = SourceSpec("s", kind, "c")
        self.process: subprocess.Popen[bytes] | None = None
        self.server: ThreadingHTTPServer | None = None

    def put(self, name: str, text: str) -> None:
        """Create or change a document (``name`` without suffix)."""
        raise NotImplementedError

    def remove(self, name: str) -> None:
        raise NotImplementedError

    def commit(self, message: str) -> None:
        """Make the changes visible (a commit for git)."""

    def break_(self) -> None:
        """Make the source unreachable."""
        raise NotImplementedError

    def close(self) -> None:
        if self.process is not None:
            stop_process(self.process, 10)
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()


class FolderSite(Site):
    def __init__(self, root: Path, name: str = "folder") -> None:
        super().__init__(SourceKind.FOLDER, root)
        self.dir = root / "kb"
        self.dir.mkdir()
        self.spec = SourceSpec(name, SourceKind.FOLDER, unique_collection(), path=str(self.dir), include=("*.md",))

    def put(self, name: str, text: str) -> None:
        path = self.dir / f"{name}.md"
        path.write_text(f"# {name}\n\n{text}\n")
        _touch(path)

    def remove(self, name: str) -> None:
        (self.dir / f"{name}.md").unlink()

    def break_(self) -> None:
        self.dir.rename(self.root / "unmounted")


class GitSite(FolderSite):
    def __init__(self, root: Path) -> None:
        super().__init__(root, "git")
        _git(self.dir, "init", "--quiet", "--initial-branch=main")
        _git(self.dir, "config", "user.email", "t@example.invalid")
        _git(self.dir, "config", "user.name", "test")
        (self.dir / "docs").mkdir()
        self.spec = SourceSpec(
            "git", SourceKind.GIT, unique_collection(), repository=str(self.dir), branch="main", subpath="docs"
        )

    def put(self, name: str, text: str) -> None:
        (self.dir / "docs" / f"{name}.md").write_text(f"# {name}\n\n{text}\n")

    def remove(self, name: str) -> None:
        (self.dir / "docs" / f"{name}.md").unlink()

    def commit(self, message: str) -> None:
        _git(self.dir, "add", "-A")
        _git(self.dir, "commit", "--quiet", "-m", message)


class S3Site(Site):
    def __init__(self, root: Path) -> None:
        super().__init__(SourceKind.S3, root)
        port = free_port()
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        log = (root / "moto.log").open("wb")
        self.process = subprocess.Popen(tied_to_this_process(command), stdout=log, stderr=subprocess.STDOUT)
        endpoint = f"http://127.0.0.1:{port}"
        self.client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
        for _ in range(200):  # bounded: the server answers within seconds
            try:
                self.client.create_bucket(Bucket="kb-bucket")
                break
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.05)
        self.spec = SourceSpec(
            "s3", SourceKind.S3, unique_collection(), bucket="kb-bucket", prefix="docs/", endpoint_url=endpoint
        )

    def put(self, name: str, text: str) -> None:
        self.client.put_object(Bucket="kb-bucket", Key=f"docs/{name}.md", Body=f"# {name}\n\n{text}\n".encode())

    def tag(self, name: str, principals: str) -> None:
        tags = {"TagSet": [{"Key": "ragmesh-acl", "Value": principals}]}
        self.client.put_object_tagging(Bucket="kb-bucket", Key=f"docs/{name}.md", Tagging=tags)

    def remove(self, name: str) -> None:
        self.client.delete_object(Bucket="kb-bucket", Key=f"docs/{name}.md")

    def break_(self) -> None:
        assert self.process is not None
        stop_process(self.process, 10)
        self.process = None


class WebSite(Site):
    def __init__(self, root: Path) -> None:
        super().__init__(SourceKind.WEB, root)
        self.dir = root / "www"
        (self.dir / "docs").mkdir(parents=True)
        (self.dir / "robots.txt").write_text("User-agent: *\nDisallow: /docs/private\n")
        (self.dir / "docs" / "private").mkdir()
        (self.dir / "docs" / "private" / "secret.html").write_text(
            "<html><body><article><p>"
            + FILES["garden"]
            + " Private: robots.txt forbids it.</p></article></body></html>"
        )
        handler = functools.partial(_QuietHandler, directory=str(self.dir))
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        base = f"http://127.0.0.1:{self.server.server_address[1]}/docs/"
        self.spec = SourceSpec("web", SourceKind.WEB, unique_collection(), url=base + "index.html", allow_prefix=base)
        self.links: list[str] = []

    def _index(self) -> None:
        links = " ".join(f'<a href="{n}.html">{n}</a>' for n in [*self.links, "private/secret"])
        (self.dir / "docs" / "index.html").write_text(
            f"<html><head><title>Index</title></head><body><article><h1>Station guide</h1><p>{FILES['docking']}"
            f"</p><nav>{links}</nav></article></body></html>"
        )

    def put(self, name: str, text: str) -> None:
        if name not in self.links:
            self.links.append(name)
            self._index()
        path = self.dir / "docs" / f"{name}.html"
        path.write_text(
            f"<html><head><title>{name}</title></head><body><article><h1>{name}</h1><p>{text}</p>"
            f"<p>{text}</p></article></body></html>"
        )
        _touch(path)

    def remove(self, name: str) -> None:
        (self.dir / "docs" / f"{name}.html").unlink()  # still linked: a 404 means gone

    def break_(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()
        self.server = None


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


def make_site(kind: SourceKind, root: Path) -> Site:
    """A fresh endpoint of ``kind`` under ``root``."""
    return {SourceKind.FOLDER: FolderSite, SourceKind.GIT: GitSite, SourceKind.S3: S3Site, SourceKind.WEB: WebSite}[
        kind
    ](root)


def remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
