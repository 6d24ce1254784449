"""Logging set-up shared by the services: one line per record, on stderr."""

from __future__ import annotations

import logging


def configure_logging(level: str = "info") -> None:
    """Log ``level`` and above to stderr with time, level and logger name."""
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
