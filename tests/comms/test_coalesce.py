"""The coalescer says, during a flush, whether it folds a burst (several changes), and
spaces a burst's flushes by its burst window."""

from __future__ import annotations

import asyncio

from runtimed.comms.coalesce import Coalescer
from tests.conftest import eventually


async def test_a_flush_of_one_change_is_not_a_bursts_and_one_of_several_is() -> None:
    seen: list[bool] = []
    coalescer = Coalescer(0.016, lambda: seen.append(coalescer.bursting))
    coalescer.poke()
    coalescer.flush_now()
    for _ in range(5):
        coalescer.poke()
    coalescer.flush_now()
    coalescer.flush_now()  # nothing since: a forced flush of nothing is no burst
    assert seen == [False, True, False]
    assert coalescer.bursting is False  # only during a flush
    coalescer.cancel()


async def test_a_bursts_flushes_are_spaced_by_the_burst_window() -> None:
    """The first change after a pause flushes at once; in a burst the next flush waits
    for the burst window (widened by a room of many peers), not the coalescing window."""
    now = [100.0]
    flushed: list[float] = []
    coalescer = Coalescer(0.016, lambda: flushed.append(now[0]), clock=lambda: now[0])
    coalescer.burst_window = 0.3
    coalescer.poke()
    await asyncio.sleep(0)  # the first flush: at once, on the next loop iteration
    assert flushed == [100.0]
    now[0] += 0.001  # a burst: the next change comes 1 ms later
    coalescer.poke()
    await asyncio.sleep(0.1)  # six coalescing windows: a timer never fires early
    assert flushed == [100.0]
    await eventually(lambda: len(flushed) == 2, what="the burst's next flush")
    coalescer.cancel()
