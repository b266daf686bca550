"""The daemon's own directory and files beside the socket, safe in a directory others share.

A `--socket` path may point anywhere, /tmp included. So the socket's directory is
created (0700) only when missing, and an existing one is used only when it belongs to
this user and nobody else can write to it: it is never chmod-ed, because a directory
the daemon did not create is not the daemon's to change. The files in it (lock, start
lock, token) are opened without following a symbolic link, so a link planted there
cannot make the daemon truncate or write another file.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


class UnsafePathError(RuntimeError):
    """A directory or file the daemon refuses to use; the message says why and what to do."""


def ensure_private_dir(path: Path) -> None:
    """Create `path` 0700 if it is missing; otherwise check that only we can write to it."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        os.mkdir(path, 0o700)
        return
    except FileExistsError:
        pass
    check_private_dir(path)


def check_private_dir(path: Path) -> None:
    """Raise UnsafePathError unless `path` is a directory of ours that only we can write."""
    me = os.geteuid()
    link = path.lstat()
    if stat.S_ISLNK(link.st_mode) and link.st_uid not in (me, 0):
        raise UnsafePathError(
            f"refusing to use {path}: it is a symbolic link owned by uid {link.st_uid}"
        )
    st = path.stat()
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"refusing to use {path}: it is not a directory")
    if st.st_uid != me:
        raise UnsafePathError(
            f"refusing to use {path}: it belongs to uid {st.st_uid}, not to this user "
            f"(uid {me}); choose a socket in a directory of your own"
        )
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafePathError(
            f"refusing to use {path}: group or others can write to it "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); put the socket in a directory of "
            f"your own, e.g. {path / f'runtimed-{me}'}/ (created 0700 if missing)"
        )


def open_private(path: Path, flags: int, *, new: bool = False) -> int:
    """`os.open` for a file of ours: 0600 when created, never through a symbolic link,
    a regular file only; `new` insists that the file does not exist yet."""
    # O_NONBLOCK only while opening: a FIFO planted in its place must not hang us.
    flags |= os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    if new:
        flags |= os.O_CREAT | os.O_EXCL
    try:
        fd = os.open(path, flags, 0o600)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsafePathError(
                f"refusing to open {path}: it is a symbolic link (remove it if it is yours)"
            ) from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise UnsafePathError(f"refusing to open {path}: it is not a regular file")
    os.set_blocking(fd, True)
    return fd


def read_private(path: Path) -> str:
    """The text of a file of ours, read without following a symbolic link."""
    fd = open_private(path, os.O_RDONLY)
    with os.fdopen(fd, encoding="utf-8") as file:
        return file.read()
