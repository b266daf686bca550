"""Running the daemon in the background: start it detached, find it, stop it, read its log.

`start_daemon` spawns `runtimed serve --log-file ...` in a new session with no
terminal and returns once the socket answers. Concurrent starts on one socket take
turns on a start lock beside it (`runtimed.sock.start`), so ten clients autostarting at
once spawn one daemon; the daemon's own lock (`runtimed.sock.lock`, see `lock.py`) would
still keep it to one without that.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import sys
import time
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .client import Client, ClientError
from .lock import holder_pid, process_alive
from .private_files import ensure_private_dir, open_private

PROBE_TIMEOUT = 2.0
POLL_INTERVAL = 0.05
LOG_TAIL_LINES = 20
# The detached daemon's stderr: the log file, 0600 when new, never through a symlink.
LOG_FLAGS = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW


class ServiceError(Exception):
    """Starting or stopping failed; the message says why (with the log's tail)."""


@dataclass(frozen=True, slots=True)
class Started:
    info: dict[str, Any]  # the daemon's daemon_info
    already_running: bool


def probe(socket_path: Path, timeout: float = PROBE_TIMEOUT) -> dict[str, Any] | None:
    """The daemon's `daemon_info` if one answers on the socket, else None.

    A daemon speaking another protocol raises ClientError (unsupported_version):
    it is running, but this installation cannot use it.
    """

    async def ask() -> dict[str, Any] | None:
        try:
            async with Client(socket_path=socket_path, timeout=timeout, name="runtimed-probe") as c:
                return await c.request("daemon_info", timeout=timeout)
        except ClientError as exc:
            if exc.code in ("no_daemon", "closed", "timeout"):
                return None
            raise

    return asyncio.run(ask())


def start_daemon(
    socket_path: Path,
    *,
    log_file: Path,
    data_dir: Path | None = None,
    serve_args: Sequence[str] = (),
    timeout: float = 30.0,
) -> Started:
    """Start a detached daemon on the socket, or report the one already there.

    `serve_args` are passed on to `runtimed serve` (e.g. `--ws 127.0.0.1:8765`).
    """
    deadline = time.monotonic() + timeout
    with _start_turn(socket_path, deadline):
        info = probe(socket_path)
        if info is not None:
            return Started(info, already_running=True)
        return _spawn_and_wait(socket_path, log_file, data_dir, serve_args, deadline)


def _spawn_and_wait(
    socket_path: Path,
    log_file: Path,
    data_dir: Path | None,
    serve_args: Sequence[str],
    deadline: float,
) -> Started:
    child: int | None = _spawn(socket_path, log_file, data_dir, serve_args)
    while True:
        info = probe(socket_path)
        if info is not None:
            return Started(info, already_running=info.get("pid") != child)
        exited = child is not None and _reaped(child)
        if exited:
            child = None
        holder = holder_pid(socket_path)  # read after the reap: the winner wrote its pid
        if exited and holder is None:
            raise ServiceError(
                f"the daemon exited before answering on {socket_path}\n" + _tail_report(log_file)
            )
        if child is None and holder is None:
            # Our child lost the lock to a daemon that has since gone (it was stopping).
            child = _spawn(socket_path, log_file, data_dir)
        if time.monotonic() > deadline:
            raise ServiceError(
                f"no daemon answered on {socket_path} in time\n" + _tail_report(log_file)
            )
        time.sleep(POLL_INTERVAL)


def _spawn(
    socket_path: Path, log_file: Path, data_dir: Path | None, serve_args: Sequence[str]
) -> int:
    """`runtimed serve` in a new session: no terminal, stdin closed, stderr to the log
    (a crash before logging is set up still leaves its traceback there)."""
    log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    argv = [sys.executable, "-m", "runtimed.cli", "--socket", str(socket_path), "serve"]
    argv += ["--log-file", str(log_file)]
    if data_dir is not None:
        argv += ["--data-dir", str(data_dir)]
    argv += serve_args
    # posix_spawn, not Popen: nothing in this process keeps a handle on the daemon.
    try:
        return os.posix_spawn(
            sys.executable,
            argv,
            os.environ,
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_OPEN, 1, os.devnull, os.O_WRONLY, 0),
                (os.POSIX_SPAWN_OPEN, 2, str(log_file), LOG_FLAGS, 0o600),
            ],
            setsid=True,
        )
    except OSError as exc:  # the log cannot be opened: a symbolic link, say
        message = f"cannot start the daemon: {exc.strerror} (its log: {log_file})"
        raise ServiceError(message) from exc


def _reaped(pid: int) -> bool:
    """True (and the zombie collected) once our spawned child has exited."""
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid


@contextlib.contextmanager
def _start_turn(socket_path: Path, deadline: float) -> Iterator[None]:
    """Concurrent starts on one socket take turns, so only the first spawns a daemon."""
    path = socket_path.with_name(socket_path.name + ".start")
    ensure_private_dir(path.parent)
    fd = open_private(path, os.O_RDWR | os.O_CREAT)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ServiceError(
                        f"another `runtimed start` on {socket_path} did not finish in time"
                    ) from None
                time.sleep(POLL_INTERVAL)
        yield
    finally:
        os.close(fd)


def stop_daemon(socket_path: Path, timeout: float = 60.0) -> dict[str, Any] | None:
    """Ask the daemon to stop (rooms saved, kernels shut down) and wait until it exits.

    Returns the stopped daemon's info, or None when none was running.
    """
    info = probe(socket_path)
    if info is None:
        stuck = holder_pid(socket_path)
        if stuck is not None:
            raise ServiceError(
                f"pid {stuck} holds {socket_path}'s lock but does not answer: "
                f"`kill {stuck}` (or `kill -9 {stuck}`), then `runtimed start`"
            )
        return None

    async def ask() -> None:
        async with Client(socket_path=socket_path, name="runtimed-stop") as client:
            await client.request("shutdown_daemon")

    asyncio.run(ask())
    pid = info["pid"]
    deadline = time.monotonic() + timeout
    while process_alive(pid):
        if time.monotonic() > deadline:
            raise ServiceError(f"the daemon (pid {pid}) is still stopping after {timeout:g} s")
        time.sleep(POLL_INTERVAL)
    return info


# --- the log ---------------------------------------------------------------------------


def tail(path: Path, lines: int) -> list[str]:
    """The last `lines` lines of a file (empty when it does not exist)."""
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            return [line.rstrip("\n") for line in deque(f, maxlen=lines)]
    except FileNotFoundError:
        return []


def _tail_report(log_file: Path) -> str:
    lines = tail(log_file, LOG_TAIL_LINES)
    if not lines:
        return f"(the log {log_file} is empty)"
    return f"last lines of {log_file}:\n" + "\n".join(f"  {line}" for line in lines)


def follow(path: Path, backlog: int = 0, poll: float = 0.2) -> Iterator[str]:
    """The last `backlog` lines, then every line appended, across rotations (`tail -F`)."""
    handle = None
    inode = 0
    partial = ""
    first_open = True  # a file that replaced a rotated one is read whole
    try:
        while True:
            if handle is None:
                try:
                    handle = path.open(encoding="utf-8", errors="replace")
                except FileNotFoundError:
                    first_open = False
                else:
                    inode = os.fstat(handle.fileno()).st_ino
                    if first_open:
                        yield from (line.rstrip("\n") for line in deque(handle, maxlen=backlog))
                        first_open = False
            if handle is not None:
                # Checked before draining: what was written before a rotation is not lost.
                replaced = _replaced(path, inode)
                for chunk in iter(handle.readline, ""):
                    partial += chunk
                    if partial.endswith("\n"):
                        yield partial.rstrip("\n")
                        partial = ""
                if replaced:
                    handle.close()
                    handle = None
                    continue
            time.sleep(poll)
    finally:
        if handle is not None:
            handle.close()


def _replaced(path: Path, inode: int) -> bool:
    """The file at `path` is no longer the one we read (rotated away or deleted)."""
    try:
        return path.stat().st_ino != inode
    except FileNotFoundError:
        return True
