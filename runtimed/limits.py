"""Per-daemon limits: file descriptors, rooms and kernels.

A daemon that runs out of file descriptors cannot even answer `runtimed status`, so it
starts with the most the system lets it have. Rooms and kernels are capped
(`Settings.max_rooms`, `Settings.max_kernels`) so that a runaway client gets a clear
error code instead of taking the machine's memory.
"""

from __future__ import annotations

import contextlib
import resource
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from .room import RequestFailed

if TYPE_CHECKING:
    from .room import NotebookRoom


def raise_fd_limit() -> tuple[int, int]:
    """Raise the soft RLIMIT_NOFILE to the hard one; returns (soft, hard) as it now is."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):  # an unlimited hard limit, say
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)


def check_room_limit(rooms: Iterable[NotebookRoom], limit: int) -> None:
    """Raise `too_many_rooms` when `limit` rooms are open already."""
    open_rooms = sum(not room.closed for room in rooms)
    if open_rooms >= limit:
        raise RequestFailed(
            "too_many_rooms",
            f"this daemon has {open_rooms} notebooks open, its limit (max_rooms): "
            "close one (leave its room) and try again",
        )


def has_kernel(room: NotebookRoom) -> bool:
    return room.kernel is not None and room.kernel_status not in ("dead", "shutdown")


class KernelSlots:
    """Running kernels plus launches and attaches still in flight, against `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._starting: Counter[str] = Counter()

    @contextlib.contextmanager
    def claim(self, room: NotebookRoom, rooms: Iterable[NotebookRoom]) -> Iterator[None]:
        """Hold a slot while `room` starts a kernel; `too_many_kernels` when none is free.
        A room that has a kernel already replaces it (or keeps it): no new slot."""
        if has_kernel(room):
            yield
            return
        in_use = sum(has_kernel(r) for r in rooms if r is not room)
        in_use += sum(self._starting.values()) - self._starting[room.notebook_id]
        if in_use >= self.limit:
            raise RequestFailed(
                "too_many_kernels",
                f"this daemon runs {in_use} kernels, its limit (max_kernels): "
                "shut one down and try again",
            )
        self._starting[room.notebook_id] += 1
        try:
            yield
        finally:
            self._starting[room.notebook_id] -= 1
            if not self._starting[room.notebook_id]:
                del self._starting[room.notebook_id]
