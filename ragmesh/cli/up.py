"""``ragmesh up``: start the whole mesh on this machine and keep it running until Ctrl-C."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType
from typing import Any

import click

from ragmesh.cli.common import EXIT_FAILED, client_from, fail
from ragmesh.cli.ingest import ingest_files
from ragmesh.cli.query import stream_answer
from ragmesh.mesh.envoy_tls import TlsOptions
from ragmesh.mesh.launcher import Mesh, MeshError
from ragmesh.mesh.mesh_tls import MeshTls
from ragmesh.mesh.plan import COMPONENT_ORDER, MeshPlan
from ragmesh.mesh.processes import ROOT, free_port
from ragmesh.mesh.supervisor import Supervisor
from ragmesh.vocabulary.keys import Grant, digest, new_key, toml_entry

SAMPLE_CORPUS = ROOT / "corpus" / "docs"
DEMO_COLLECTION = "ragmesh_docs"
DEMO_QUESTION = "What is the default embedding model?"
EXISTING_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command()
@click.option("--embedders", type=click.IntRange(1, 16), default=1, show_default=True, help="Embedder replicas.")
@click.option("--generators", type=click.IntRange(1, 16), default=1, show_default=True, help="Generator replicas.")
@click.option(
    "--orchestrators", type=click.IntRange(1, 16), default=1, show_default=True, help="Orchestrator replicas."
)
@click.option(
    "--workers",
    type=click.IntRange(0, 16),
    default=None,
    show_default="1 with --redis-url, else 0",
    help="Worker processes for background jobs and query batches (need --redis-url).",
)
@click.option(
    "--retrievers",
    type=click.IntRange(1, 16),
    default=1,
    show_default=True,
    help="Retrievers (>1 needs a Milvus server).",
)
@click.option(
    "--retriever-uri",
    default=str(ROOT / "var" / "milvus" / "ragmesh.db"),
    show_default="var/milvus/ragmesh.db",
    help="milvus-lite file, or http://host:19530 for a Milvus server.",
)
@click.option(
    "--redis-url",
    envvar="RAGMESH_ORCHESTRATOR_REDIS_URL",
    default="",
    help="Redis for the L2 cache and the task broker of jobs and batches (e.g. redis://127.0.0.1:6379/0).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=8080, show_default=True, help="Envoy's client port.")
@click.option(
    "--admin-port", type=click.IntRange(1, 65535), default=9901, show_default=True, help="Envoy's admin port."
)
@click.option(
    "--traces-file",
    type=click.Path(path_type=Path),
    default=ROOT / "var" / "traces.jsonl",
    show_default="var/traces.jsonl",
    help="Write spans of every service as JSON lines here (view with `ragmesh trace`); '' turns it off.",
)
@click.option(
    "--otlp", "otlp_endpoint", default="", help="Send spans by OTLP/gRPC to this collector (http://host:4317)."
)
@click.option(
    "--random-ports",
    is_flag=True,
    help="Give components free ports instead of 50051-50054 / 9101-9104 (several meshes on one machine).",
)
@click.option(
    "--internal-port",
    type=click.IntRange(1, 65535),
    help="Envoy's internal port (the orchestrator's way to the components) [default: 8081, free with --random-ports].",
)
@click.option("--tls-cert", type=EXISTING_FILE, help="Envoy's certificate (EXISTING_FILE): TLS on the client port.")
@click.option("--tls-key", type=EXISTING_FILE, help="Its private key (EXISTING_FILE).")
@click.option(
    "--tls-ca",
    type=EXISTING_FILE,
    help="CA of client certificates (EXISTING_FILE): mTLS, clients without one are refused.",
)
@click.option(
    "--mesh-tls-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="mTLS on every hop behind Envoy, with ca.pem, envoy.pem, envoy-key.pem, service.pem and "
    "service-key.pem from this directory (docs/security.md).",
)
@click.option(
    "--api-key-file",
    type=EXISTING_FILE,
    help="Key file of the orchestrators (docs/security.md): every call needs an API key.",
)
@click.option("--generate-api-key", is_flag=True, help="Auth on with a fresh key for this session, printed once.")
@click.option("--log-dir", type=click.Path(path_type=Path), default=ROOT / "var" / "logs", show_default="var/logs")
@click.option(
    "--sources-file",
    type=EXISTING_FILE,
    envvar="RAGMESH_ORCHESTRATOR_SOURCES_FILE",
    help="Sources to sync (docs/sources.md); starts a beat for their schedule (needs --redis-url).",
)
@click.option("--demo", is_flag=True, help=f"Index the sample corpus and stream an answer to {DEMO_QUESTION!r}.")
@click.option("--exit-after-demo", is_flag=True, help="With --demo: stop the mesh after the answer.")
@click.pass_context
def up(context: click.Context, **options: Any) -> None:
    """Start every component as its own process on loopback, with Envoy in front.

    Waits until every replica reports SERVING, prints where everything is, and runs
    until Ctrl-C or SIGTERM, then stops everything gracefully.
    """
    root = context.find_root().obj
    log_dir: Path = options["log_dir"].resolve()
    api_key_file: Path | None = options["api_key_file"]
    if options["generate_api_key"]:
        if api_key_file is not None:
            fail("--api-key-file and --generate-api-key exclude each other")
        api_key_file, root["api_key"] = session_key_file(log_dir)
        click.echo(f"API key of this session (shown once; send as 'authorization: Bearer <key>'): {root['api_key']}")
    plan = _plan(options, log_dir, api_key_file)
    root["address"] = f"127.0.0.1:{plan.envoy_port}"
    # Ctrl-C and SIGTERM stop the mesh even when this process was started with SIGINT ignored
    # (nohup, `cmd &` in a script, some CI runners): an ignored Ctrl-C would leave it running.
    for stop_signal in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop_signal, _interrupt)
    try:
        mesh = Mesh(plan)
        mesh.start(report=lambda line: click.echo(line, err=True))
    except MeshError as error:
        fail(str(error))
    try:
        click.echo("\n".join(["ragmesh is up:", *(f"  {line}" for line in mesh.describe())]))
        if options["demo"]:
            _demo(context)
            if options["exit_after_demo"]:
                return
        click.echo("Ctrl-C stops the mesh.")
        _watch(mesh)
    except KeyboardInterrupt:
        click.echo("\nstopping ...", err=True)
    finally:
        mesh.stop()
        click.echo("ragmesh stopped", err=True)


def _plan(options: dict[str, Any], log_dir: Path, api_key_file: Path | None) -> MeshPlan:
    """The mesh the options ask for."""
    counts = [options[name] for name in ("retrievers", "embedders", "generators", "orchestrators")]
    traces_file: Path | None = options["traces_file"]
    random_ports: bool = options["random_ports"]
    return MeshPlan(
        replicas=dict(zip(COMPONENT_ORDER, counts, strict=True)),
        envoy_port=options["port"],
        envoy_admin_port=options["admin_port"],
        envoy_internal_port=options["internal_port"] or (free_port() if random_ports else 8081),
        tls=tls_options(options["tls_cert"], options["tls_key"], options["tls_ca"], log_dir),
        mesh_tls=mesh_tls_options(options["mesh_tls_dir"], log_dir),
        api_key_file=api_key_file.resolve() if api_key_file else None,
        default_ports=not random_ports,
        retriever_uri=options["retriever_uri"],
        redis_url=options["redis_url"],
        traces_file=str(traces_file.resolve()) if traces_file and str(traces_file) not in ("", ".") else "",
        otlp_endpoint=options["otlp_endpoint"],
        log_dir=log_dir,
        workers=options["workers"],
        sources_file=str(options["sources_file"].resolve()) if options["sources_file"] else "",
    )


def tls_options(cert: Path | None, key: Path | None, ca: Path | None, log_dir: Path) -> TlsOptions | None:
    """Envoy's TLS settings from the options (SDS files under the log directory)."""
    if cert is None and key is None and ca is None:
        return None
    if cert is None or key is None:
        fail("--tls-cert and --tls-key go together (and --tls-ca needs both)")
    return TlsOptions(str(cert.resolve()), str(key.resolve()), str(ca.resolve()) if ca else None, str(log_dir / "sds"))


def mesh_tls_options(directory: Path | None, log_dir: Path) -> MeshTls | None:
    """The certificates of the hops behind Envoy (its SDS files under the log directory)."""
    if directory is None:
        return None
    try:
        return MeshTls.from_directory(directory, log_dir / "sds")
    except ValueError as error:
        fail(f"--mesh-tls-dir: {error}")


def session_key_file(log_dir: Path) -> tuple[Path, str]:
    """A fresh key for tenant ``default`` (every collection, read and write) and the key
    file granting it, readable by this user only."""
    key = new_key()
    path = log_dir / "session-keys.toml"
    log_dir.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.chmod(0o600)
    path.write_text(toml_entry(Grant(digest(key), "default", ("*",), write=True)))
    return path, key


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _watch(mesh: Mesh) -> None:
    """Sleep until interrupted. A replica that dies is reported with its log tail and
    restarted with exponential back-off, as Kubernetes would (Envoy routes around it
    meanwhile)."""
    supervisor = Supervisor(mesh, lambda line: click.echo(line, err=True))
    while True:
        time.sleep(1.0)
        supervisor.tick()


def _demo(context: click.Context) -> None:
    """Index the sample corpus, then stream an answer with its sources."""
    with client_from(context) as client:
        if not ingest_files(client, (SAMPLE_CORPUS,), DEMO_COLLECTION):
            raise SystemExit(EXIT_FAILED)
        click.echo(click.style(f"\n$ ragmesh ask -c {DEMO_COLLECTION} {DEMO_QUESTION!r}", bold=True))
        stream_answer(client, DEMO_QUESTION, DEMO_COLLECTION)
