"""The daemon's event loop: asyncio's API on uvloop, or on the standard loop.

uvloop runs the same asyncio code on libuv, with less overhead per loop turn, timer,
callback and socket write. The daemon's work is mostly those (a widget stream is a
loop turn per kernel message and a socket write per peer per batch): in bench case 4
(50 clients, 1,000 widget updates a second) uvloop cut the daemon's CPU per delivered
frame by about 8%. `serve --event-loop asyncio` runs the standard loop instead (a
debugging aid; the tests run the daemon on both).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

T = TypeVar("T")

EventLoop = Literal["uvloop", "asyncio"]
EVENT_LOOPS: tuple[EventLoop, ...] = ("uvloop", "asyncio")


def loop_factory(name: EventLoop) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What makes the named loop; None for the standard one (or when uvloop is missing:
    it is a dependency only where it builds)."""
    if name == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], event_loop: EventLoop = "uvloop") -> T:
    """`asyncio.run(main)`, on the named loop."""
    with asyncio.Runner(loop_factory=loop_factory(event_loop)) as runner:
        return runner.run(main)


def running_loop_name() -> str:
    """The running loop's kind, for the start-up log line."""
    return (
        "uvloop" if type(asyncio.get_running_loop()).__module__.startswith("uvloop") else "asyncio"
    )
