"""How long the event loop was blocked: a task that asks to wake every millisecond.

Its lateness is the time some callback held the loop. Cheap enough to run beside the
daemon (about a thousand tiny wake-ups a second), but it costs some CPU, so only the
cases that report stalls turn it on.
"""

from __future__ import annotations

import asyncio
from typing import Any

from .stats import percentile

INTERVAL = 0.001


class LoopProbe:
    """Records every wake-up's lateness until `take()` hands them over and starts afresh."""

    def __init__(self) -> None:
        self._lateness: list[float] = []

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            start = loop.time()
            await asyncio.sleep(INTERVAL)
            self._lateness.append(loop.time() - start - INTERVAL)

    def take(self) -> dict[str, Any]:
        """Stall figures (ms) since the last call."""
        lateness, self._lateness = self._lateness, []
        ms = [max(0.0, x) * 1000 for x in lateness]
        return {
            "wakeups": len(ms),
            "max_ms": max(ms, default=0.0),
            "p99_ms": percentile(ms, 99) if ms else 0.0,
            "over_50ms": sum(1 for x in ms if x > 50),
            "over_20ms": sum(1 for x in ms if x > 20),
        }
