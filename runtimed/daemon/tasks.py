"""Who owns which task, and the order in which they end.

Every background task of the daemon belongs to an anyio task group (asyncio is the
backend). A group whose life is one `async with` (a connection's writer and requests,
a gateway channel's writer) is just that; an object that lives longer than the call
that made it (the daemon's rooms and connections, one room's saves, reconciles and
compactions) holds a `TaskOwner`, a group run by its parent's group until `close`.

    Daemon.serve                      root group
      +- connections (TaskOwner)      one task per client connection (server.py)
      |    +- connection group        the peer's writer, one task per request
      +- rooms (TaskOwner)            one runner per open room, idle closes (rooms.py)
           +- room.tasks (TaskOwner)  saves of the stored copy and the .ipynb, the
                                      file watch's merges, reconcile, compaction,
                                      the kernel session's runner (kernel/runner.py)

Timers (debounce, trust refresh, idle grace, retries) are loop callbacks, cancelled
by their owner; what they start is a task in the owner's group.

Shutdown order (Daemon.shutdown, then NotebookRoom.close for each room):
  1. stop accepting: the Unix listener and the web port close;
  2. tell every peer `daemon_shutdown` and close it (its connection ends);
  3. close each room, one at a time:
       a. cancel its timers, a running compaction and reconcile;
       b. stop the kernel it owns (an attached kernel is left running);
       c. settle pending comm writes and flush them into the doc;
       d. final save of the .ipynb (autosave), then of the stored copy;
       e. end the room's group: whatever is still running there is cancelled;
  4. the connections get a grace period to end, then are cancelled;
  5. the web port finishes closing; the socket file goes; the lock is released.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
import structlog
from anyio.abc import TaskGroup, TaskStatus

log = structlog.get_logger(__name__)


class TaskOwner:
    """A task group held open for an object that outlives one `async with`.

    A parent group runs `run` (`await parent.start(owner.run)`: ready on return);
    `start_soon` hands the group work, even from a loop callback; `close` ends it. A
    task that fails is logged, never taken down with its siblings and owner: the
    daemon does not die of one failed save or reconcile.
    """

    def __init__(self, name: str, log_: Any = None) -> None:
        self.name = name
        self.log = log_ or log
        self._group: TaskGroup | None = None
        self._release = asyncio.Event()  # plain asyncio: an owner may be made before the loop runs
        self._ended = asyncio.Event()
        self._grace: float | None = None
        self.closed = False

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Hold the group open until `close`; then wait for (or cancel) what runs in it."""
        try:
            async with anyio.create_task_group() as group:
                self._group = group
                task_status.started()
                await self._release.wait()
                if self._grace is not None:
                    group.cancel_scope.deadline = anyio.current_time() + self._grace
        finally:
            self._group = None
            self.closed = True
            self._ended.set()

    @property
    def running(self) -> bool:
        return self._group is not None and not self._release.is_set()

    def start_soon(self, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run `func(*args)` in the group; RuntimeError once it is closing (or before it
        runs): its owner stops asking for work before it closes the group."""
        if self._group is None or self._release.is_set():
            raise RuntimeError(f"{self.name} runs no more tasks ({_name(func)})")
        self._group.start_soon(logged, self.log, func, *args, name=_name(func))

    async def start(self, func: Callable[..., Awaitable[Any]], *args: Any) -> Any:
        """Run `func(*args, task_status=...)` in the group; returns once it said it is ready."""
        if self._group is None or self._release.is_set():
            raise RuntimeError(f"{self.name} is closed")
        return await self._group.start(func, *args, name=_name(func))

    async def close(self, grace: float | None = 0.0) -> None:
        """End the group: what runs in it gets `grace` seconds (None: as long as it
        takes), then is cancelled. Returns once everything in it has ended."""
        self._grace = grace
        self._release.set()
        if self._group is not None:
            await self._ended.wait()
        self.closed = True


async def logged(log_: Any, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
    """Run `func(*args)`; an exception (a bug of ours) is logged, not raised into the
    group, so the siblings and the owner go on."""
    try:
        await func(*args)
    except Exception:
        log_.exception("task_failed", task=_name(func))


def _name(func: Callable[..., Any]) -> str:
    return getattr(func, "__qualname__", repr(func))
