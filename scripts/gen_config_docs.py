"""docs/configuration.md, generated from what the config classes read.

``python -m scripts.gen_config_docs docs/configuration.md`` (``make config-docs``) builds every
service's config from a few environments (the profiles below cover the settings read only for
one backend) inside :func:`services.common.config.recording`, which notes each variable read
with its kind, default and bounds. The meanings come from ``scripts/config_docs.toml``; a
variable read without a meaning there stops the script naming it, and
tests/unit/common/test_config_docs.py fails when the committed page is not what this writes, or
when a setting in the source is read by no profile.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from services.common.config import Read, recording

ROOT = Path(__file__).resolve().parent.parent
MEANINGS = ROOT / "scripts" / "config_docs.toml"
SERVICES = ("orchestrator", "embedder", "retriever", "generator", "worker")
#: The most specific read of a variable is the one documented.
KINDS = ("raw", "text", "address", "flag", "number", "integer", "choice")


def _profiles() -> dict[str, tuple[Callable[[Mapping[str, str]], object], list[dict[str, str]]]]:
    """Each service's config reader and the environments that reach all its settings."""
    from services.embedder.config import EmbedderConfig
    from services.generator.config import GeneratorConfig
    from services.orchestrator.config import OrchestratorConfig
    from services.retriever.config import RetrieverConfig
    from services.worker.beat import BeatSettings
    from services.worker.config import WorkerConfig

    def worker_and_beat(environ: Mapping[str, str]) -> object:
        return WorkerConfig.from_env(environ), BeatSettings.from_env(environ)

    return {
        "orchestrator": (OrchestratorConfig.from_env, [{}, {"RAGMESH_ORCHESTRATOR_COMPONENTS_TLS_CA": "ca.pem"}]),
        "embedder": (EmbedderConfig.from_env, [{}]),
        "retriever": (RetrieverConfig.from_env, [{}]),
        "generator": (
            GeneratorConfig.from_env,
            [{}, {"RAGMESH_GENERATOR_BACKEND": "openai", "RAGMESH_GENERATOR_OPENAI_URL": "http://llm:8000/v1"}],
        ),
        "worker": (
            worker_and_beat,
            [{"RAGMESH_WORKER_REDIS_URL": "redis://127.0.0.1:6379/0", "RAGMESH_WORKER_COMPONENTS_TLS_CA": "ca.pem"}],
        ),
    }


def reads() -> dict[str, dict[str, Read]]:
    """Service -> setting (the part after ``RAGMESH_<SERVICE>_``) -> its most specific read."""
    found: dict[str, dict[str, Read]] = {}
    for service, (read_config, environments) in _profiles().items():
        prefix = f"RAGMESH_{service.upper()}_"
        settings: dict[str, Read] = {}
        for environ in environments:
            with recording() as noted:
                read_config(environ)
            for read in noted:
                name = read.variable.removeprefix(prefix)
                if name not in settings or KINDS.index(read.kind) > KINDS.index(settings[name].kind):
                    settings[name] = read
        found[service] = settings
    return found


@dataclass(frozen=True)
class Row:
    """One line of a table."""

    variable: str
    default: str
    accepts: str
    meaning: str


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else f"{value:,}"


def accepts(read: Read) -> str:
    """What a value may be."""
    if read.kind == "choice":
        return " · ".join(f"`{c}`" for c in read.choices)
    if read.kind == "flag":
        return "`true` · `false`"
    if read.kind == "address":
        return "`host:port`"
    if read.kind in ("integer", "number"):
        word = "integer" if read.kind == "integer" else "number"
        low, high = read.minimum, read.maximum
        if low is not None and high is not None:
            return f"{word} {_number(low)}–{_number(high)}"
        return f"{word} ≥ {_number(low)}" if low is not None else word
    return "text"


def default_text(read: Read, given: str | None) -> str:
    """The default as the page shows it (machine-specific paths must be given in the TOML)."""
    if given is not None:
        return given
    value = read.default
    if read.kind == "raw" or value is None or value == "":
        return "unset"
    if isinstance(value, str) and any(part in value for part in (str(Path.home()), str(ROOT), sys.prefix)):
        raise SystemExit(f"{read.variable}: its default ({value}) depends on this machine; give it in {MEANINGS.name}")
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{_number(value) if isinstance(value, int | float) else value}`"


def _row(variable: str, read: Read, entry: Any) -> Row:
    if entry is None:
        raise SystemExit(f"{variable} has no meaning in {MEANINGS.relative_to(ROOT)}: add one")
    meaning, default = (entry, None) if isinstance(entry, str) else (entry["meaning"], entry.get("default"))
    return Row(variable, default_text(read, default), accepts(read), meaning)


def _marked(row: Row, note: str) -> Row:
    return Row(row.variable, row.default, row.accepts, f"{row.meaning} ({note})")


def sections(found: dict[str, dict[str, Read]], meanings: dict[str, Any]) -> list[tuple[str, str, list[Row]]]:
    """(title, introduction, rows) of every table: the serve loop's settings (read by every gRPC
    component) once, then each service's own; the core's under the orchestrator (the worker
    reads them too, with its prefix)."""
    components = [set(found[s]) for s in SERVICES if s != "worker"]
    shared = set.intersection(*components)
    worker = set(found["worker"])
    core = (set(found["orchestrator"]) & worker) - shared
    out = []
    rows = []
    for name in sorted(shared):
        row = _row(f"RAGMESH_<SERVICE>_{name}", found["embedder"][name], meanings["every_service"].get(name))
        rows.append(row if name in worker else _marked(row, "not the worker"))
    out.append(("Every service", meanings["intro"]["every_service"], rows))
    for service in SERVICES:
        own = sorted(set(found[service]) - shared - (core if service == "worker" else set()))
        rows = [_row(f"RAGMESH_{service.upper()}_{n}", found[service][n], meanings[service].get(n)) for n in own]
        if service == "orchestrator":
            rows = [r if r.variable.removeprefix("RAGMESH_ORCHESTRATOR_") in core else _marked(r, "orchestrator only")
                    for r in rows]  # fmt: skip
        out.append((service.capitalize(), meanings["intro"][service], rows))
    return out


def ports(found: dict[str, dict[str, Read]]) -> list[str]:
    """The table of default ports per service."""
    lines = ["| service | gRPC (`ADDR`) | metrics (`METRICS_PORT`) | HTTP (`HTTP_ADDR`) |", "|---|---|---|---|"]
    for service in SERVICES:
        settings = found[service]
        http = f"`{settings['HTTP_ADDR'].default}`" if "HTTP_ADDR" in settings else "—"
        lines.append(f"| {service} | `{settings['ADDR'].default}` | `{settings['METRICS_PORT'].default}` | {http} |")
    return lines


def _cell(text: str) -> str:
    """Table-safe: a pipe in a cell (``r|rw``) would end the cell."""
    return text.replace("|", "\\|")


def render(found: dict[str, dict[str, Read]], meanings: dict[str, Any]) -> str:
    """The page."""
    lines = [meanings["intro"]["page"].rstrip(), "", *ports(found), ""]
    for title, intro, rows in sections(found, meanings):
        lines += [
            f"## {title}",
            "",
            intro.rstrip(),
            "",
            "| variable | default | accepts | meaning |",
            "|---|---|---|---|",
        ]
        lines += [f"| `{r.variable}` | {_cell(r.default)} | {r.accepts} | {_cell(r.meaning)} |" for r in rows]
        lines.append("")
    process = meanings["process"]
    lines += ["## Read by every process", "", meanings["intro"]["process"].rstrip(), ""]
    lines += ["| variable | default | meaning |", "|---|---|---|"]
    lines += [
        f"| `{name}` | {_cell(entry['default'])} | {_cell(entry['meaning'])} |" for name, entry in process.items()
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    """Write the page (or print it with ``-``)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out", help="the page to write (docs/configuration.md), or - for stdout")
    args = parser.parse_args()
    page = render(reads(), tomllib.loads(MEANINGS.read_text(encoding="utf-8")))
    if args.out == "-":
        sys.stdout.write(page)
    else:
        Path(args.out).write_text(page, encoding="utf-8")


if __name__ == "__main__":
    main()
