"""Giving freed memory back to the system: after a compaction drops an old doc, and
every few seconds (a burst of kernel messages leaves as much behind).

glibc keeps freed heap memory in its arenas. Measured: dropping a doc that held 87,000
widget-state writes lowered the process's RSS by 16 MB of 120 MB, and `malloc_trim(0)`
returned the rest (50 ms for those 100 MB, in a worker thread: ctypes releases the
GIL); the daemon sat at 249 MB after 100,000 updates to 1,000 sliders, at 147 MB once
trimmed and at 114 MB once compacted too. A trim with nothing to return takes
microseconds. Elsewhere (no glibc) this does nothing.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import time
from collections.abc import Awaitable, Callable
from typing import Final

import structlog

log = structlog.get_logger(__name__)

# Seconds between two trims of the daemon's heap: often, so each has little to return
# (a trim holds each arena's lock while it returns that arena's pages: 50 ms for 100 MB).
TRIM_INTERVAL: Final = 2.0


# glibc's `mallopt` parameter (malloc.h) for how many heaps ("arenas") threads use.
M_ARENA_MAX: Final = -8


def _libc(name: str) -> Callable[..., int] | None:
    # The process's own symbols, where the C library already is (`find_library` would
    # run ldconfig in a subprocess: 90 ms of every start).
    try:
        return getattr(ctypes.CDLL(None), name)  # type: ignore[no-any-return]
    except (OSError, AttributeError):  # not glibc
        return None


_malloc_trim = _libc("malloc_trim")
_mallopt = _libc("mallopt")
_frozen = False


def share_one_heap() -> bool:
    """Have every thread allocate from the main heap (glibc's `M_ARENA_MAX` 1); False
    where unsupported. Before the threads start: one that allocated keeps its heap.

    By default a thread gets a heap of its own: ZeroMQ's I/O thread (where every kernel
    message is received first) and the worker threads (saves, compaction builds). What
    a burst leaves in theirs is given back only in part. Measured on `make bench` cases
    3 and 5 (100,000 updates to 1,000 sliders, three runs each, RSS at rest): 82.9-86.0
    MB with a heap per thread, 75.5-76.5 MB with one, 73.3-88.2 MB with two.
    """
    return _mallopt is not None and _mallopt(M_ARENA_MAX, 1) == 1


def freeze_startup_objects() -> None:
    """Take everything alive at start-up (modules, their functions and classes: 168,000
    objects) out of the garbage collector's reach: they live as long as the daemon,
    and each full collection walked them all, stalling the loop for 100-250 ms (one
    fell inside a compaction). Later objects are collected as usual. Once per process
    (a process that starts several daemons, as tests do, freezes only its start-up)."""
    global _frozen
    if _frozen:
        return
    _frozen = True
    gc.collect()
    gc.freeze()


def give_back() -> float:
    """Return the heap's free memory to the system; the seconds it took (0 if unsupported)."""
    if _malloc_trim is None:
        return 0.0
    started = time.perf_counter()
    _malloc_trim(0)
    return time.perf_counter() - started


async def give_back_in_thread() -> None:
    """`give_back` off the event loop, logged."""
    seconds = await asyncio.to_thread(give_back)
    if seconds > 0.001:  # something was returned
        log.debug("memory_given_back", seconds=round(seconds, 4))


class TrimRequests:
    """Trims asked for right after something freed much at once (a compaction's old
    doc, a join's SNAPSHOT and comm_sync, a leaving peer's sync state), one at a time in
    the owner's task group; asked again during one, it runs once more after it.

    The periodic trim would return the same within `TRIM_INTERVAL`; until then, ten
    joins of a room of 1,000 widgets held 9-19 MB more (five SNAPSHOT joins: 13 MB;
    with a trim at each join and leave: 0.1 MB).
    """

    def __init__(self, spawn: Callable[[Callable[[], Awaitable[None]]], None]) -> None:
        self._spawn = spawn
        self._running = False
        self._again = False

    def ask(self) -> None:
        if self._running:
            self._again = True
            return
        try:
            self._spawn(self._run)
        except RuntimeError:  # the owner is closing: the daemon's periodic trim remains
            return
        self._running = True

    async def _run(self) -> None:
        try:
            self._again = True
            while self._again:
                self._again = False
                await give_back_in_thread()
        finally:
            self._running = False


async def give_back_periodically(interval: float = TRIM_INTERVAL) -> None:
    """Trim every `interval` seconds, until cancelled. A trim that cannot run (no
    descriptor left for the worker thread's first import, say) is skipped and said
    once: housekeeping never ends the daemon."""
    failing = False
    while True:
        await asyncio.sleep(interval)
        try:
            await give_back_in_thread()
        except Exception as exc:
            if not failing:
                log.warning("memory_trim_failed", error=repr(exc))
            failing = True
        else:
            failing = False
