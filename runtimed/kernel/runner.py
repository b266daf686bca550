"""Who runs a kernel connection's tasks: the session's owner, and the runner it holds.

A session outlives the call that made it, and restarts inside a request: its runner
(the one task that holds the connection's task group) runs in its owner's group, a
room's `TaskOwner` in the daemon or any anyio task group, never on its own.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import anyio


class TaskStarter(Protocol):
    """The owner of a session's runner: an anyio task group or a `TaskOwner`."""

    async def start(self, func: Callable[..., Awaitable[Any]], *args: Any) -> Any: ...


class Runner:
    """One connection's runner as its owner sees it: a scope to cancel, an end to await."""

    def __init__(self) -> None:
        self.scope = anyio.CancelScope()
        self.ended = anyio.Event()
        self.task = asyncio.current_task()  # the runner's own: it never waits for itself

    async def stop(self) -> None:
        self.scope.cancel()
        if asyncio.current_task() is not self.task:
            await self.ended.wait()
