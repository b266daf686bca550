"""The coalescer says, during a flush, whether it folds a burst (several changes)."""

from __future__ import annotations

from runtimed.comms.coalesce import Coalescer


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
