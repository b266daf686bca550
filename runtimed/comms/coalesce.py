"""Turning many small changes into few doc changes without adding latency.

`poke()` after any change: the first poke after a quiet spell flushes on the next
loop iteration (so the rest of the batch being handled joins it), and during a burst
at most one flush runs per window. A quiet spell is half a window without a poke, or
a whole window without a flush: so updates paced slower than half a window (a slider
dragged at 100 Hz against a 16 ms window) are each written at once, while a stream
any faster still gets one change per window. Nothing is dropped: a flush writes
whatever is dirty at that moment.

A burst's flushes may be spaced wider than the window (`burst_window`): the room widens
it when its peers are many, since pacing gives each of them a burst's doc changes only
every so often anyway (protocol.md, "Pacing"); doc changes made faster than any peer
receives them would only cost CPU and history.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


class Coalescer:
    """One timer: `flush` at once after a pause, at most once per `window` in a burst."""

    def __init__(
        self,
        window: float,
        flush: Callable[[], None],
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window  # a quiet spell is half of it
        self.burst_window = window  # a burst's flushes at most once per this
        self._flush = flush
        self._clock = clock
        self._handle: asyncio.Handle | None = None
        self._last = float("-inf")
        self._last_poke = float("-inf")
        self._pokes = 0  # changes since the last flush
        self.flushes = 0
        # During a flush: it folds several changes (a burst's), not a single one.
        self.bursting = False

    def poke(self) -> None:
        self._pokes += 1
        now = self._clock()
        paused = now - self._last_poke >= self.window / 2
        self._last_poke = now
        if self._handle is not None:
            return
        loop = asyncio.get_running_loop()
        delay = 0.0 if paused else self._last + self.burst_window - now
        if delay <= 0:
            self._handle = loop.call_soon(self.flush_now)
        else:
            self._handle = loop.call_later(delay, self.flush_now)

    def flush_now(self) -> None:
        """Flush at once (also on close, so nothing waits on a timer that will not fire)."""
        self.bursting, self._pokes = self._pokes > 1, 0
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        self._last = self._clock()
        self.flushes += 1
        try:
            self._flush()
        finally:
            self.bursting = False

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
