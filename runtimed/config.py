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
# Peer pacing (Settings.sync_pacing, room_sync_rate, room_write_rate; docs/protocol.md).
SYNC_PACING = 1.0
ROOM_SYNC_RATE = 100.0
ROOM_WRITE_RATE = 2_000.0


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


def default_state_dir() -> Path:
    """The background daemon's log: $RUNTIMED_STATE_DIR, else the user's state dir.

    Kept apart from the data dir so that wiping logs never touches saved notebooks.
    """
    explicit = os.environ.get("RUNTIMED_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    return Path(platformdirs.user_state_dir(APP_NAME, appauthor=False))


def default_log_path() -> Path:
    """Where `runtimed start` points the detached daemon's rotating log."""
    return default_state_dir() / "runtimed.log"


def default_gateway_url() -> str | None:
    """$RUNTIMED_GATEWAY_URL: a Kernel Gateway (e.g. Jupyter Enterprise Gateway) that
    runs the kernels `launch_kernel` starts; None (unset or empty): local kernels."""
    return os.environ.get("RUNTIMED_GATEWAY_URL") or None


def default_gateway_token() -> str | None:
    """$RUNTIMED_GATEWAY_TOKEN: sent as `Authorization: token <T>` to the gateway (an
    environment variable, not an argument, keeps it out of the process list)."""
    return os.environ.get("RUNTIMED_GATEWAY_TOKEN") or None


def lock_path(socket_path: Path) -> Path:
    """The flock file beside the socket: whoever holds it is the socket's one daemon."""
    return socket_path.with_name(socket_path.name + ".lock")


def token_path(socket_path: Path) -> Path:
    """The WebSocket token file beside the socket: 0600, a fresh token at each start."""
    return socket_path.with_name(socket_path.name + ".token")


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a daemon instance needs to know before it starts."""

    socket_path: Path = field(default_factory=default_socket_path)
    data_dir: Path = field(default_factory=default_data_dir)
    # A connection must complete its handshake within this many seconds.
    handshake_timeout: float = 10.0
    # A room with no peers and no kernel is saved and closed after this many seconds.
    room_grace: float = 30.0
    # Persistence: save after this much quiet, and at least this often under steady change.
    save_debounce: float = 0.5
    save_max_interval: float = 5.0
    # Comm writes to the doc: at most one change per comm burst window (seconds; widened
    # in a room of many peers, see docs/protocol.md "Pacing").
    coalesce_window: float = 0.016
    # A peer whose unsent frames exceed this many bytes has its comm broadcasts
    # replaced by one comm_sync; one that stays stuck this long is dropped.
    peer_queue_limit: int = 32 * 1024 * 1024
    peer_stall_timeout: float = 30.0
    # A doc-sync message with changes is in flight until the peer answers or this many
    # seconds pass; doc changes meanwhile wait and go in one message (protocol.md).
    sync_pacing: float = SYNC_PACING
    # In a burst a room's peers together get at most about this many SYNC frames with
    # changes, and this many socket writes, a second: a peer waits peers/rate between two.
    room_sync_rate: float = ROOM_SYNC_RATE
    room_write_rate: float = ROOM_WRITE_RATE
    # An execution that carried at least this many comm messages is followed by a
    # reconcile with the kernel's own widget state once the kernel is idle.
    reconcile_threshold: int = 500
    # Kernels that the daemon launched get this long to shut down: a shutdown_request,
    # SIGTERM after half of it, SIGKILL at the end.
    kernel_shutdown_timeout: float = 4.0
    # A launched kernel that has not answered kernel_info by then is killed: launch fails.
    kernel_startup_timeout: float = 60.0
    # Compaction (docs/compaction.md): replace a room's doc by a fresh one with the same
    # content once its history holds `compact_changes` changes, or is at least 64 KB
    # (uncompressed) and over `compact_ratio` times a fresh doc's; after `compact_quiet`
    # seconds without a client change, at most every `compact_interval` seconds. A peer
    # that has not switched within `compact_deadline` seconds is dropped. A room with no
    # change for `compact_rest` seconds whose file is over `compact_ratio` times a fresh
    # doc's is compacted too (a small notebook's file, under the memory budget, can be
    # many times its content). False: only on request.
    compaction: bool = True
    compact_changes: int = 2000
    compact_ratio: float = 2.0
    compact_quiet: float = 1.0
    compact_interval: float = 5.0
    compact_deadline: float = 30.0
    compact_rest: float = 10.0
    # The WebSocket listener as (host, port), None for none; port 0 picks a free one.
    # A host other than loopback is refused unless ws_allow_remote is set.
    ws: tuple[str, int] | None = None
    ws_allow_remote: bool = False
    # Autosave of a room's .ipynb: after this many seconds without change, and at most
    # this long after the first unsaved change; a failed save is retried this often.
    autosave: bool = True
    autosave_quiet: float = 2.0
    autosave_max_delay: float = 60.0
    autosave_retry: float = 10.0
    # A room's .ipynb is looked at (stat) this often, so an edit made on disk shows up
    # while nobody edits in the room; 0 turns that off (then: at open and each save).
    file_watch_interval: float = 2.0
    # WebSocket-port connections that have not sent their request yet: at most this
    # many in all and per peer address; more are closed at once (each costs an fd).
    ws_max_waiting: int = 128
    ws_max_waiting_per_peer: int = 32
    # Per daemon: open rooms and running kernels; past them, `too_many_rooms` (a
    # refused hello) and `too_many_kernels` (a refused launch or attach).
    max_rooms: int = 1024
    max_kernels: int = 64
    # Kernels on a Kernel Gateway (docs/remote-kernels.md): its base URL (http or https)
    # and token; None: kernels are local processes. A REST call gets `gateway_timeout`
    # seconds (a kernel start gets kernel_startup_timeout); a dropped kernel WebSocket
    # is reconnected for up to `gateway_reconnect_timeout` seconds before the kernel
    # counts as dead; the gateway's kernel model is polled every `gateway_poll_interval`.
    gateway_url: str | None = field(default_factory=default_gateway_url)
    gateway_token: str | None = field(default_factory=default_gateway_token)
    gateway_timeout: float = 20.0
    gateway_reconnect_timeout: float = 30.0
    gateway_poll_interval: float = 2.0

    @property
    def docs_dir(self) -> Path:
        return self.data_dir / "docs"

    @property
    def blobs_dir(self) -> Path:
        return self.data_dir / "blobs"

    @property
    def trust_dir(self) -> Path:
        """The notebook-signing secret and signature store (notebook trust)."""
        return self.data_dir / "trust"
