"""The one debounce timer of the stored copy and of the .ipynb (pure timing, a real loop)."""

from __future__ import annotations

import asyncio

from runtimed.daemon.debounce import Debouncer
from tests.conftest import eventually


async def test_pokes_in_a_row_fire_once_after_the_quiet_spell() -> None:
    fired: list[int] = []
    debounce = Debouncer(lambda: fired.append(1), quiet=0.05, max_delay=60)
    for _ in range(5):
        debounce.poke()
    assert debounce.pending
    await eventually(lambda: fired, what="the timer")
    assert not debounce.pending
    await asyncio.sleep(0.1)  # nothing else was armed: the count stays at one
    assert fired == [1]


async def test_constant_change_still_fires_by_the_bound() -> None:
    fired: list[int] = []
    debounce = Debouncer(lambda: fired.append(1), quiet=60, max_delay=0.05)
    debounce.poke()
    while not fired:  # the quiet spell never comes; the bound does
        debounce.poke()
        await asyncio.sleep(0.01)
    assert fired == [1]


async def test_what_comes_due_while_held_fires_after_the_block() -> None:
    fired: list[int] = []
    debounce = Debouncer(lambda: fired.append(1), quiet=0.01, max_delay=0.01)
    with debounce.held():
        debounce.poke()
        await eventually(lambda: not debounce.pending, what="due")  # due, and held back
        assert fired == []
    await eventually(lambda: fired, what="the timer")


async def test_a_closed_debouncer_arms_nothing() -> None:
    fired: list[int] = []
    debounce = Debouncer(lambda: fired.append(1), quiet=0.01, max_delay=0.01)
    debounce.poke()
    debounce.close()
    debounce.poke()
    debounce.arm(0)
    with debounce.held():
        pass
    assert not debounce.pending
    await asyncio.sleep(0.05)
    assert fired == []
