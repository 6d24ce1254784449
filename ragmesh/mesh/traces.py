"""Reading the JSON-lines span files that services write (``RAGMESH_TRACES_FILE``) and
showing one trace as an indented tree with each span's service and duration."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path


@dataclass
class SpanRecord:
    """One finished span, as exported."""

    name: str
    trace_id: str
    span_id: str
    parent_id: str | None
    service: str
    kind: str
    start: datetime
    end: datetime
    status: str
    attributes: dict[str, object]
    children: list[SpanRecord] = field(default_factory=list)

    @property
    def milliseconds(self) -> float:
        """The span's duration."""
        return (self.end - self.start).total_seconds() * 1000


def read_spans(path: Path) -> list[SpanRecord]:
    """Every span in a JSON-lines file (lines that are not spans are skipped)."""
    spans = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            raw = json.loads(line)
            spans.append(
                SpanRecord(
                    name=raw["name"],
                    trace_id=raw["context"]["trace_id"].removeprefix("0x"),
                    span_id=raw["context"]["span_id"].removeprefix("0x"),
                    parent_id=raw["parent_id"].removeprefix("0x") if raw.get("parent_id") else None,
                    service=raw.get("resource", {}).get("attributes", {}).get("service.name", "?"),
                    kind=raw.get("kind", "").removeprefix("SpanKind."),
                    start=datetime.fromisoformat(raw["start_time"].replace("Z", "+00:00")),
                    end=datetime.fromisoformat(raw["end_time"].replace("Z", "+00:00")),
                    status=raw.get("status", {}).get("status_code", "UNSET"),
                    attributes=raw.get("attributes", {}),
                )
            )
        except (KeyError, ValueError, AttributeError):
            continue
    return spans


def latest_trace_id(spans: Iterable[SpanRecord]) -> str | None:
    """The trace whose root span started last."""
    roots = [s for s in spans if s.parent_id is None]
    return max(roots, key=lambda s: s.start).trace_id if roots else None


def build_tree(spans: Iterable[SpanRecord], trace_id: str) -> list[SpanRecord]:
    """The root spans of ``trace_id`` with their children attached, in start order."""
    members = {s.span_id: s for s in spans if s.trace_id == trace_id}
    roots: list[SpanRecord] = []
    for span in sorted(members.values(), key=lambda s: s.start):
        parent = members.get(span.parent_id or "")
        (parent.children if parent is not None else roots).append(span)
    return roots


def render(roots: Iterable[SpanRecord]) -> list[str]:
    """Indented lines: duration, service, span name, notable attributes."""
    lines: list[str] = []

    def walk(span: SpanRecord, depth: int) -> None:
        notes = {k.removeprefix("ragmesh."): v for k, v in span.attributes.items() if k.startswith("ragmesh.")}
        extra = " " + " ".join(f"{k}={v}" for k, v in notes.items()) if notes else ""
        error = " ERROR" if span.status == "ERROR" else ""
        lines.append(f"{span.milliseconds:9.1f} ms  {'  ' * depth}{span.name} [{span.service}]{error}{extra}")
        for child in span.children:
            walk(child, depth + 1)

    for root in roots:
        walk(root, 0)
    return lines
