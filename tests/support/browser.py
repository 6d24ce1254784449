"""A real browser for the console's tests: Debian's ``chromium`` driven by Playwright (no
browser download). When it is not installed, the tests that need it are skipped with a
reason saying so (``make test`` installs it with apt when it runs as root)."""

from __future__ import annotations

import os
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip
SKIP_REASON = (
    f"the console's browser tests need Debian's chromium at {CHROMIUM} "
    "(`apt-get install chromium`; `make test` installs it when run as root)"
)
#: Set to a directory (e.g. docs/img) to keep a screenshot of each console page there.
SCREENSHOTS_VARIABLE = "RAGMESH_CONSOLE_SCREENSHOTS"


def have_chromium() -> bool:
    return CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)


def screenshot_dir() -> Path | None:
    """Where to keep the pages' screenshots, when asked."""
    where = os.environ.get(SCREENSHOTS_VARIABLE)
    return Path(where) if where else None
