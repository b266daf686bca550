"""The socket's directory and the files beside it, when the directory is not ours alone.

Each case runs the real `runtimed serve` / `runtimed start` as a subprocess with
`--socket` in the directory under test. Another user is uid 65534 (`nobody`): a child
process drops root's privileges before it plants its link (the suite runs as root).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtimed.config import lock_path
from runtimed.log import configure_logging
from tests.conftest import short_socket_dir

NOBODY = 65534

AS_NOBODY = f"""
import os, sys
os.setgroups([])
os.setgid({NOBODY})
os.setuid({NOBODY})
"""
PLANT_LINK = AS_NOBODY + "os.symlink(sys.argv[1], sys.argv[2])"
MAKE_DIR = AS_NOBODY + "os.mkdir(sys.argv[1], 0o700)"


def as_nobody(script: str, *args: Path) -> None:
    subprocess.run([sys.executable, "-c", script, *map(str, args)], check=True, timeout=30)


def runtimed(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtimed.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "RUNTIMED_STATE_DIR": str(short_socket_dir())},
    )


def serve(socket: Path, data: Path) -> subprocess.CompletedProcess[str]:
    """`runtimed serve` that is expected to refuse at once (else it is stopped)."""
    return runtimed("--socket", str(socket), "serve", "--data-dir", str(data), timeout=30)


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A world-writable sticky directory, like /tmp, that nobody can write into. Made
    in /var/tmp, whose every ancestor other users may traverse (a test must not depend
    on /tmp's own mode)."""
    path = Path(tempfile.mkdtemp(prefix="rtd-", dir="/var/tmp"))
    path.chmod(0o1777)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def victim(tmp_path: Path) -> Path:
    path = tmp_path / "precious.txt"
    path.write_text("the user's own data\n")
    return path


def test_a_link_planted_by_another_user_in_a_shared_dir_truncates_nothing(
    shared_dir: Path, victim: Path, tmp_path: Path
) -> None:
    socket = shared_dir / "runtimed.sock"
    for planted in (lock_path(socket), socket.with_name(socket.name + ".start")):
        as_nobody(PLANT_LINK, victim, planted)
        assert planted.lstat().st_uid == NOBODY
    result = serve(socket, tmp_path / "data")
    assert result.returncode == 1
    assert "group or others can write to it (mode 1777)" in result.stderr
    started = runtimed("--socket", str(socket), "start", "--data-dir", str(tmp_path / "data"))
    assert started.returncode == 1
    assert "group or others can write to it" in started.stderr
    assert victim.read_text() == "the user's own data\n"
    # The directory is not the daemon's: its mode is left alone (the sticky bit too).
    assert stat.S_IMODE(shared_dir.stat().st_mode) == 0o1777
    assert not socket.exists()


def test_a_shared_dir_is_usable_through_a_private_subdirectory(
    shared_dir: Path, tmp_path: Path
) -> None:
    """What the refusal suggests works, unless another user took the name first."""
    refused = serve(shared_dir / "runtimed.sock", tmp_path / "data")
    suggested = shared_dir / f"runtimed-{os.geteuid()}"
    assert f"e.g. {suggested}/ (created 0700 if missing)" in refused.stderr
    socket = suggested / "runtimed.sock"
    data = str(tmp_path / "data")
    started = runtimed("--socket", str(socket), "start", "--data-dir", data)
    try:
        assert started.returncode == 0, started.stderr
        assert stat.S_IMODE(suggested.stat().st_mode) == 0o700
    finally:
        assert runtimed("--socket", str(socket), "stop").returncode == 0
    squatted = shared_dir / "taken"
    as_nobody(MAKE_DIR, squatted)
    result = serve(squatted / "runtimed.sock", tmp_path / "data")
    assert result.returncode == 1
    assert f"it belongs to uid {NOBODY}, not to this user" in result.stderr


def test_a_symlinked_lock_file_in_our_own_dir_is_refused(victim: Path, tmp_path: Path) -> None:
    own = short_socket_dir()  # 0700, ours
    socket = own / "runtimed.sock"
    lock_path(socket).symlink_to(victim)
    result = serve(socket, tmp_path / "data")
    assert result.returncode == 1
    assert f"refusing to open {lock_path(socket)}: it is a symbolic link" in result.stderr
    assert victim.read_text() == "the user's own data\n"


def test_a_directory_owned_by_another_user_is_refused_and_not_chmodded(tmp_path: Path) -> None:
    theirs = short_socket_dir()
    os.chown(theirs, NOBODY, NOBODY)
    theirs.chmod(0o755)
    result = serve(theirs / "runtimed.sock", tmp_path / "data")
    assert result.returncode == 1
    assert f"it belongs to uid {NOBODY}, not to this user" in result.stderr
    st = theirs.stat()
    assert (st.st_uid, stat.S_IMODE(st.st_mode)) == (NOBODY, 0o755)
    assert list(theirs.iterdir()) == []


def test_a_missing_socket_dir_is_created_private(tmp_path: Path) -> None:
    parent = short_socket_dir()
    socket = parent / "fresh" / "runtimed.sock"
    log = tmp_path / "runtimed.log"
    started = runtimed(
        "--socket", str(socket), "start", "--data-dir", str(tmp_path / "data"),
        "--log-file", str(log),
    )  # fmt: skip
    try:
        assert started.returncode == 0, started.stderr
        assert stat.S_IMODE(socket.parent.stat().st_mode) == 0o700
        start_lock = socket.with_name(socket.name + ".start")
        for path in (socket, lock_path(socket), start_lock, log):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    finally:
        assert runtimed("--socket", str(socket), "stop").returncode == 0


def test_start_refuses_a_symlinked_log_file(victim: Path, tmp_path: Path) -> None:
    socket = short_socket_dir() / "runtimed.sock"
    log = tmp_path / "runtimed.log"
    log.symlink_to(victim)
    started = runtimed(
        "--socket", str(socket), "start", "--data-dir", str(tmp_path / "data"),
        "--log-file", str(log),
    )  # fmt: skip
    assert started.returncode == 1
    assert "Too many levels of symbolic links" in started.stderr
    assert victim.read_text() == "the user's own data\n"


def test_log_files_are_private(tmp_path: Path) -> None:
    fresh = tmp_path / "logs" / "new.log"
    configure_logging("info", log_file=fresh)
    older = tmp_path / "old.log"
    older.write_text("a line from before\n")
    older.chmod(0o644)
    configure_logging("info", log_file=older)
    try:
        for path in (fresh, older):
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert older.read_text() == "a line from before\n"  # appended to, not truncated
        link = tmp_path / "link.log"
        link.symlink_to(older)
        with pytest.raises(OSError):
            configure_logging("info", log_file=link)
    finally:
        configure_logging("info")
