"""Where the daemon listens and keeps its files, and the knobs that shape its timing.

Kept apart from the server so that the CLI, the client and tests resolve paths the
same way the daemon does, without starting anything.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import platformdirs

APP_NAME = "runtimed"


def default_socket_path() -> Path:
    """The spec's socket rule: $RUNTIMED_SOCKET, else $XDG_RUNTIME_DIR, else ~/.cache."""
    explicit = os.environ.get("RUNTIMED_SOCKET")
    if explicit:
        return Path(explicit).expanduser()
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR")
    if runtime_dir:
        return Path(runtime_dir) / APP_NAME / "runtimed.sock"
    return Path.home() / ".cache" / APP_NAME / "runtimed.sock"


def default_data_dir() -> Path:
    """Saved documents and blobs: $RUNTIMED_DATA_DIR, else the platform's user data dir."""
    explicit = os.environ.get("RUNTIMED_DATA_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a daemon instance needs to know before it starts."""

    socket_path: Path = field(default_factory=default_socket_path)
    data_dir: Path = field(default_factory=default_data_dir)
    # A room with no peers and no kernel is saved and closed after this many seconds.
    room_grace: float = 30.0
    # Persistence: save after this much quiet, and at least this often under steady change.
    save_debounce: float = 0.5
    save_max_interval: float = 5.0
    # Comm writes to the doc: at most one change per comm burst window (seconds).
    coalesce_window: float = 0.016
    # A peer whose unsent frames exceed this many bytes has its comm broadcasts
    # replaced by one comm_sync; one that stays stuck this long is dropped.
    peer_queue_limit: int = 32 * 1024 * 1024
    peer_stall_timeout: float = 30.0
    # Kernels that the daemon launched get this long to shut down before SIGKILL.
    kernel_shutdown_timeout: float = 5.0

    @property
    def docs_dir(self) -> Path:
        return self.data_dir / "docs"

    @property
    def blobs_dir(self) -> Path:
        return self.data_dir / "blobs"
