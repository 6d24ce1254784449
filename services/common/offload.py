"""Keep the event loop responsive: CPU work on a large input runs in a worker thread.

A thread hop costs ~50-100 µs, more than tokenizing a sentence, so small inputs stay
inline; a large one would stall every other RPC (health checks included) while it ran.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

#: Characters of text beyond which tokenizing is worth a thread hop.
INLINE_CHARS = 4000


async def off_loop_if(large: bool, function: Callable[[], T]) -> T:
    """``function()`` inline when the input is small, in a worker thread when ``large``."""
    if not large:
        return function()
    return await asyncio.to_thread(function)
