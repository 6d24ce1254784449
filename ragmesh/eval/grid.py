"""The cells of ``ragmesh eval --grid``: every combination of the values given for some
variant settings of the experiments file (``--grid chunk_tokens=128,256 --grid rerank=none,mmr``).

Values are checked by the experiments file's own checks (:data:`SETTING_CHECKS`). Chunking
(``chunk_tokens``, ``overlap_tokens``) is an ingestion setting: each distinct chunking gets its
own collection; every other setting travels with each query. The first cell — the first
value of every axis — is the baseline every other cell is compared with.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

from ragmesh.vocabulary.experiments.settings import SETTING_CHECKS

#: Settings of a collection, not of a query.
CHUNKING = ("chunk_tokens", "overlap_tokens")
#: Settings a query carries (named as the client's query options).
QUERY_SETTINGS = (
    "rerank", "mmr_lambda", "search_mode", "context", "candidates", "max_new_tokens", "temperature", "top_p", "seed"
)  # fmt: skip
#: Set on the cell itself (chunks retrieved per query).
CELL_SETTINGS = ("top_k",)
#: What a grid cannot vary, and why.
NOT_IN_GRIDS = {
    "collection": "the grid names one collection per chunking itself",
    "prompt_template": "templates live in the server's experiments file: compare them with --experiment",
}
MAX_CELLS = 64


class GridError(ValueError):
    """A --grid option is malformed; the message names it."""


@dataclass(frozen=True)
class Axis:
    """One --grid option: a setting and its values, in the order given."""

    name: str
    values: tuple[Any, ...]


@dataclass(frozen=True)
class Cell:
    """One combination: its settings, the collection it reads, its query options."""

    settings: dict[str, Any]
    collection: str
    chunking: tuple[int, int]
    query_options: dict[str, Any] = field(default_factory=dict)
    #: Chunks retrieved per query when the grid varies top_k (else the run's --chunks).
    top_k: int | None = None

    @property
    def label(self) -> str:
        """``chunk_tokens=128 rerank=mmr``: how tables and charts name the cell."""
        return " ".join(f"{name}={value}" for name, value in self.settings.items())


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def parse_axis(option: str) -> Axis:
    """``name=v1,v2,...`` as an Axis; GridError naming the option when it is not one."""
    name, sep, values = option.partition("=")
    name = name.strip()
    if not sep or not name or not values.strip():
        raise GridError(f"--grid {option!r}: expected SETTING=VALUE,VALUE,... (e.g. rerank=none,mmr)")
    if name in NOT_IN_GRIDS:
        raise GridError(f"--grid {name}: {NOT_IN_GRIDS[name]}")
    check = SETTING_CHECKS.get(name)
    if check is None:
        known = sorted(n for n in SETTING_CHECKS if n not in NOT_IN_GRIDS)
        raise GridError(f"--grid {name}: not a variant setting; one of {', '.join(known)}")
    parsed = tuple(_value(v.strip()) for v in values.split(","))
    for value in parsed:
        if (problem := SETTING_CHECKS[name](value)) is not None:
            raise GridError(f"--grid {name}={value}: {problem}")
    if len(set(parsed)) != len(parsed):
        raise GridError(f"--grid {name}: a value is repeated")
    return Axis(name, parsed)


def parse_axes(options: tuple[str, ...] | list[str]) -> list[Axis]:
    """Every --grid option; GridError on a setting given twice or too many cells."""
    axes = [parse_axis(option) for option in options]
    names = [axis.name for axis in axes]
    if len(set(names)) != len(names):
        raise GridError(f"--grid: {sorted({n for n in names if names.count(n) > 1})} given twice; list its values once")
    count = 1
    for axis in axes:
        count *= len(axis.values)
    if count > MAX_CELLS:
        raise GridError(f"--grid: {count} cells; at most {MAX_CELLS} (every cell runs every query)")
    return axes


def default_overlap(chunk_tokens: int) -> int:
    """The overlap of a chunking the grid sets without overlap_tokens: an eighth of the chunk."""
    return chunk_tokens // 8


def collection_name(base: str, chunking: tuple[int, int]) -> str:
    """The collection of one chunking (``base`` itself for the server's chunking)."""
    if chunking == (0, 0):
        return base
    suffix = f"_c{chunking[0]}_o{chunking[1]}"
    return re.sub(r"[^A-Za-z0-9_]", "_", base)[: 64 - len(suffix)] + suffix


def cells(axes: list[Axis], base_collection: str) -> list[Cell]:
    """Every combination, the first axis varying slowest; the baseline first."""
    built = []
    for values in itertools.product(*(axis.values for axis in axes)):
        settings = dict(zip((axis.name for axis in axes), values, strict=True))
        chunk = int(settings.get("chunk_tokens", 0))
        overlap = int(settings.get("overlap_tokens", default_overlap(chunk) if chunk else 0))
        if chunk and overlap >= chunk:
            raise GridError(f"--grid: overlap_tokens={overlap} is not less than chunk_tokens={chunk}")
        if overlap and not chunk:
            raise GridError(
                "--grid overlap_tokens needs chunk_tokens on the grid too (the server's chunk size is unknown)"
            )
        query = {name: settings[name] for name in QUERY_SETTINGS if name in settings}
        top_k = settings.get("top_k")
        built.append(Cell(settings, collection_name(base_collection, (chunk, overlap)), (chunk, overlap), query, top_k))
    return built


def chunkings(grid: list[Cell]) -> dict[str, tuple[int, int]]:
    """Collection -> chunking, one entry per collection to fill, in cell order."""
    return {cell.collection: cell.chunking for cell in grid}
