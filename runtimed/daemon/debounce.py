"""One debounce timer: act after a quiet spell, but never later than a bound.

The stored copy (persistence.py) and the .ipynb (autosave.py) are both written this
way: `poke` on every change moves the moment it is due to `quiet` seconds later, and a
doc that keeps changing is still written `max_delay` seconds after its first unsaved
change. The timer is a loop callback, not a task, and a poke that only moves the moment
later leaves it as it is (it looks again when it fires): a widget burst pokes 60 times
a second. Only the work it starts (`on_due`, handed to a task group by the owner) is a
task.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Iterator


class Debouncer:
    """When `on_due` next runs; `on_due` is called on the loop, and must not block."""

    def __init__(self, on_due: Callable[[], None], *, quiet: float, max_delay: float) -> None:
        self.on_due = on_due
        self.quiet = quiet
        self.max_delay = max_delay
        self._timer: asyncio.Handle | None = None
        self._timer_at = 0.0  # loop time the timer is set for (an event loop may hand
        # back a plain Handle, with no `when()`, for a moment already past)
        self._due_at = 0.0  # loop time; the timer may be set earlier, never later
        self._dirty_since: float | None = None
        self._held = False
        self._due_while_held = False
        self._closed = False

    def poke(self) -> None:
        """Something changed: due after `quiet` seconds of calm, `max_delay` at the latest."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._dirty_since is None:
            self._dirty_since = now
        self.arm(min(self.quiet, self._dirty_since + self.max_delay - now))

    def arm(self, delay: float) -> None:
        """Due in `delay` seconds, whatever came before (a retry after a failure)."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        self._due_at = loop.time() + max(0.0, delay)
        if self._timer is not None:
            if self._timer_at <= self._due_at:
                return  # it fires first and waits on
            self._timer.cancel()
        self._set_timer(loop)

    def _set_timer(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer_at = self._due_at
        self._timer = loop.call_at(self._due_at, self._fire)

    def cancel(self) -> None:
        """Nothing is due any more (the work runs now, or is not wanted)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._dirty_since = None

    def close(self) -> None:
        """For good: a `held` block that ends later arms nothing."""
        self._closed = True
        self.cancel()

    @property
    def pending(self) -> bool:
        return self._timer is not None

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Nothing fires inside the block; what came due meanwhile is poked again after
        it (debounce and bound start over)."""
        self._held = True
        try:
            yield
        finally:
            self._held = False
            if self._due_while_held and not self._closed:
                self.poke()
            self._due_while_held = False

    def _fire(self) -> None:
        loop = asyncio.get_running_loop()
        if self._due_at - loop.time() > 0.001:  # poked since it was set: not due yet
            self._set_timer(loop)
            return
        self._timer = None
        if self._held:
            self._due_while_held = True
            return
        self.on_due()
