"""One daemon per socket: an flock on a file beside the socket, held for the daemon's life.

The kernel drops an flock when its holder dies, however it dies, so the lock left by a
SIGKILLed daemon is simply free again: no pid guessing decides who serves. The file
also records the holder's pid, so `runtimed status` can name a daemon that holds the
socket but does not answer.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

import psutil

from .config import lock_path
from .private_files import UnsafePathError, ensure_private_dir, open_private, read_private


class DaemonAlreadyRunning(RuntimeError):
    """Another live daemon holds the socket we were asked to use."""


class DaemonLock:
    """The socket's lock; `acquire()` fails at once when another daemon holds it."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.path = lock_path(socket_path)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and record our pid; raises DaemonAlreadyRunning if it is held."""
        if self._fd is not None:
            return
        ensure_private_dir(self.path.parent)
        # O_CLOEXEC (in open_private): kernels the daemon launches must not inherit (and
        # outlive us holding) it; O_NOFOLLOW: a planted link must not make us truncate.
        fd = open_private(self.path, os.O_RDWR | os.O_CREAT)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            pid = read_lock_pid(self.socket_path)
            who = f" (pid {pid})" if pid else ""
            raise DaemonAlreadyRunning(
                f"a runtimed daemon{who} is already listening on {self.socket_path} "
                "(runtimed status)"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        """Forget our pid and drop the lock; idempotent. The file stays: unlinking a
        lock file lets two processes lock two different inodes under one name."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)
        os.close(self._fd)  # closing the only descriptor releases the flock
        self._fd = None


def read_lock_pid(socket_path: Path) -> int | None:
    """The pid the socket's lock file records (possibly of a dead daemon), or None."""
    try:
        text = read_private(lock_path(socket_path)).strip()
    except (OSError, UnicodeDecodeError, UnsafePathError):
        return None
    return int(text) if text.isdigit() else None


def holder_pid(socket_path: Path) -> int | None:
    """The pid of the live process the lock file names, or None.

    A SIGKILLed daemon cannot erase its pid, so a recorded pid counts only while that
    process runs (a zombie does not). This never touches the flock itself: probing it
    would, for an instant, refuse a daemon that is starting.
    """
    pid = read_lock_pid(socket_path)
    return pid if pid is not None and process_alive(pid) else None


def process_alive(pid: int) -> bool:
    """True while `pid` runs; an exited process that nobody reaped yet counts as gone."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
