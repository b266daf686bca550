"""The daemon: its listeners, its connections, and the daemon-wide requests.

Each connection is a thin loop around a sans-I/O `protocol.Connection`: bytes in,
events out, events dispatched to the room (connection.py). The rooms are kept by the
registry (rooms.py). Every task has an owner, and shutdown has one order: both are
written out in tasks.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import signal
import stat
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import anyio
import structlog

from notebook_doc import NotebookDoc, NotebookDocError, doc_filename, is_temp_name

from .. import __version__
from ..blob_store import BlobStore
from ..config import Settings
from ..errors import RequestFailed
from ..gc import collect_garbage
from ..kernel.process import prepare_provisioners
from ..private_files import check_private_dir
from ..service.lock import DaemonAlreadyRunning, DaemonLock
from ..trust import Notary
from ..wire import (
    PROTOCOL_VERSION,
    Connection,
    Role,
)
from . import stored
from .connection import PeerSession, Receive, StreamTransport
from .limits import KernelSlots, raise_fd_limit
from .memory import freeze_startup_objects, give_back_periodically, share_one_heap
from .peer import FrameTransport, Peer
from .room import NotebookRoom
from .rooms import RoomRegistry
from .tasks import TaskOwner
from .websocket import WebListener

log = structlog.get_logger(__name__)

READ_CHUNK = 256 * 1024
# Shutdown: how long connections may take to end once their peers were told.
CONNECTIONS_GRACE = 5.0


class Daemon:
    """Owns the rooms and the listeners; `serve()` runs until `request_shutdown()`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.blobs = BlobStore(settings.blobs_dir)
        self.notary = Notary(settings.trust_dir)
        self.started_at = time.time()
        self.log = log.bind(pid=os.getpid())
        self.registry = RoomRegistry(settings, self.blobs, self.notary, self.log)
        self.rooms: dict[str, NotebookRoom] = self.registry.rooms
        self.connections = TaskOwner("connections", self.log)
        self._peers: set[Peer] = set()
        self._stop = asyncio.Event()
        self._server: asyncio.AbstractServer | None = None
        self.web: WebListener | None = None
        self._lock = DaemonLock(settings.socket_path)
        self.kernel_slots = KernelSlots(settings.max_kernels)

    # --- listening -------------------------------------------------------------------

    async def serve(self, ready: Callable[[], None] | None = None) -> None:
        """Listen, run until asked to stop, then shut down in order."""
        share_one_heap()  # memory.py: before the kernels' and workers' threads start
        prepare_provisioners()
        fd_limit, _hard = raise_fd_limit()  # idle sockets must not starve `runtimed status`
        self.settings.docs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # The lock, held until we are gone, decides who serves this socket, not a probe.
        self._lock.acquire()
        try:
            self._remove_stale_temp_files()
            failed: Exception | None = None
            async with anyio.create_task_group() as tasks:
                await tasks.start(self.connections.run)
                await tasks.start(self.registry.tasks.run)
                try:
                    await self._listen(fd_limit, ready)
                    freeze_startup_objects()
                    async with anyio.create_task_group() as housekeeping:
                        housekeeping.start_soon(give_back_periodically)  # memory.py
                        await self._stop.wait()
                        housekeeping.cancel_scope.cancel()
                except Exception as exc:  # raised as itself, not in a group, once shut down
                    failed = exc
                finally:
                    with anyio.CancelScope(shield=True):  # a cancelled serve() still saves
                        await self._shutdown()
            if failed is not None:
                raise failed
        finally:
            self._lock.release()

    async def _listen(self, fd_limit: int, ready: Callable[[], None] | None) -> None:
        self._server = await self._listen_unix(self.settings.socket_path)
        if self.settings.ws is not None:
            self.web = await WebListener.start(self)
        if ready is not None:
            ready()  # the banner comes first in a foreground log
        self.log.info(
            "listening",
            socket=str(self.settings.socket_path),
            data_dir=str(self.settings.data_dir),
            version=__version__,
            fd_limit=fd_limit,
            autosave=self.settings.autosave,
        )
        if self.web is not None:
            self.log.info("web_listening", host=self.web.host, port=self.web.port)

    def _remove_stale_temp_files(self) -> None:
        """A daemon killed mid-save leaves a temp file beside the doc; we hold the lock,
        so nobody else is writing one."""
        for path in self.settings.docs_dir.iterdir():
            if is_temp_name(path.name):
                path.unlink(missing_ok=True)
                self.log.info("stale_temp_file_removed", path=str(path))

    def request_shutdown(self) -> None:
        self._stop.set()

    async def _listen_unix(self, path: Path) -> asyncio.AbstractServer:
        check_private_dir(path.parent)  # the lock made it, or found it private
        if path.exists() or path.is_symlink():
            if not stat.S_ISSOCK(path.lstat().st_mode):
                raise RuntimeError(f"{path} exists and is not a socket: refusing to replace it")
            if await _socket_answers(path):
                raise DaemonAlreadyRunning(
                    f"a runtimed daemon is already listening on {path} (runtimed status)"
                )
            self.log.warning("stale_socket_removed", socket=str(path))
            path.unlink()
        old_umask = os.umask(0o177)  # the socket is born 0600: no window for others
        try:
            server = await asyncio.start_unix_server(self._on_connection, path=str(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        return server

    async def _on_connection(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await self.run_connection(
            Connection(Role.SERVER), StreamTransport(writer), lambda: reader.read(READ_CHUNK)
        )

    # --- one connection ----------------------------------------------------------------

    async def run_connection(
        self, conn: Connection, transport: FrameTransport, receive: Receive
    ) -> None:
        """Drive one peer on any transport (Unix stream, WebSocket) until EOF or a
        protocol error. The listener's task waits here; the connection itself runs in
        the daemon's `connections` group, so shutdown can end it."""
        ended = asyncio.Event()

        async def connection() -> None:
            try:
                await self._serve_peer(conn, transport, receive)
            finally:
                ended.set()

        if not self.connections.running:  # the daemon is stopping
            transport.send_now(conn.error_frame("daemon_shutdown", "the daemon is stopping"))
            transport.close()
            return
        self.connections.start_soon(connection)
        await ended.wait()

    async def _serve_peer(
        self, conn: Connection, transport: FrameTransport, receive: Receive
    ) -> None:
        """The peer's writer and its requests belong to the connection's own group."""
        peer = Peer(
            conn,
            transport,
            queue_limit=self.settings.peer_queue_limit,
            stall_timeout=self.settings.peer_stall_timeout,
            sync_pacing=self.settings.sync_pacing,
            room_sync_rate=self.settings.room_sync_rate,
        )
        self._peers.add(peer)
        session = PeerSession(self, peer)
        try:
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(peer.run_writer)
                session.tasks = tasks
                try:
                    await session.read_loop(receive)
                finally:
                    session.leave()
                    peer.close()  # the writer ends; requests under way finish
        except* (ConnectionError, OSError) as group:
            peer.log.info("connection_lost", error=str(group.exceptions[0]))
        finally:
            self._peers.discard(peer)

    async def open_room(
        self, notebook_id: str, ipynb_path: str | None, *, create: bool = False
    ) -> NotebookRoom:
        return await self.registry.open(notebook_id, ipynb_path, create=create)

    # --- daemon-wide requests -----------------------------------------------------------

    def daemon_info(self) -> dict:
        return {
            "version": __version__,
            "protocol": PROTOCOL_VERSION,
            "pid": os.getpid(),
            "uptime": round(time.time() - self.started_at, 3),
            "socket": str(self.settings.socket_path),
            "data_dir": str(self.settings.data_dir),
            "rooms": [room.info() for room in self.rooms.values()],
            "kernels": [
                {
                    "notebook_id": r.notebook_id,
                    "kernel_name": r.kernel.kernel_name,
                    "status": r.kernel_status,
                    "connection_file": r.kernel.connection_file,
                    "attached": not r.kernel.owned,  # left running when the daemon stops
                }
                for r in self.rooms.values()
                if r.kernel is not None
            ],
            "web": None if self.web is None else {"host": self.web.host, "port": self.web.port},
        }

    def collect_garbage(self, min_age: float) -> dict:
        """Blobs needed by no room, open or saved, are deleted. Open rooms are read
        live; saved docs are loaded one at a time (a doc that does not load keeps
        everything: nothing is deleted when a notebook cannot be read)."""
        open_rooms = {doc_filename(room.notebook_id): room.doc for room in self.rooms.values()}
        docs: list[NotebookDoc] = list(open_rooms.values())
        for path in sorted(self.settings.docs_dir.glob("*.automerge")):
            if path.name in open_rooms:
                continue
            try:
                # gc only reads: the file's name stands in for an id the doc lacks (v1).
                docs.append(NotebookDoc.load(path.read_bytes(), notebook_id=path.stem))
            except (OSError, NotebookDocError) as exc:
                raise RequestFailed(
                    "gc_refused", f"{path} does not load ({exc}); no blob was deleted"
                ) from exc
        report = collect_garbage(docs, self.blobs, min_age=min_age)
        return {"notebooks": len(docs), **asdict(report)}

    # --- stored copies -------------------------------------------------------------------

    def stored_copies(self) -> list[dict]:
        return [
            {**copy.to_json(), "open": copy.notebook_id in self.rooms}
            for copy in stored.list_stored(self.settings.docs_dir)
        ]

    def forget(self, notebook_id: str) -> dict:
        if notebook_id in self.rooms:
            raise RequestFailed(
                "notebook_open", f"{notebook_id} is open: close its clients first, then forget it"
            )
        freed = stored.forget(self.settings.docs_dir, notebook_id)
        if not freed:
            raise RequestFailed("no_such_notebook", f"no stored copy of {notebook_id}")
        return {"notebook_id": notebook_id, "bytes_freed": freed}

    def drop_missing(self) -> list[str]:
        """Forget the stored copies of closed notebooks whose .ipynb is gone."""
        dropped = []
        for copy in stored.list_stored(self.settings.docs_dir):
            gone = copy.path is not None and not Path(copy.path).exists()
            if gone and copy.notebook_id is not None and copy.notebook_id not in self.rooms:
                stored.forget(self.settings.docs_dir, copy.notebook_id)
                dropped.append(copy.notebook_id)
        return dropped

    # --- shutdown ----------------------------------------------------------------------

    async def _shutdown(self) -> None:
        """The order written out in tasks.py: stop accepting, tell the peers, close the
        rooms, let the connections end, remove the socket."""
        self.log.info("shutting_down", rooms=len(self.rooms), peers=len(self._peers))
        if self._server is not None:
            self._server.close()
        if self.web is not None:
            self.web.close()
        for peer in list(self._peers):
            peer.transport.send_now(
                peer.conn.error_frame("daemon_shutdown", "the daemon is stopping")
            )
            peer.close()
        await self.registry.close_all()
        await self.connections.close(grace=CONNECTIONS_GRACE)
        if self.web is not None:
            await self.web.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.settings.socket_path.unlink()
        self.log.info("stopped")


async def _socket_answers(path: Path) -> bool:
    """True when something accepts connections on the socket (a live daemon)."""
    try:
        _reader, writer = await asyncio.wait_for(asyncio.open_unix_connection(str(path)), 2)
    except (OSError, TimeoutError) as exc:
        if isinstance(exc, OSError) and exc.errno not in (
            errno.ECONNREFUSED,
            errno.ENOENT,
            errno.ENOTSOCK,
        ):
            raise
        return False
    writer.close()
    return True


# One Ctrl+C often arrives twice: from the terminal to the whole process group, and
# forwarded by a parent such as `make run`. Only a signal this much later forces exit.
FORCE_EXIT_AFTER = 1.0


async def run_daemon(settings: Settings, ready: Callable[[], None] | None = None) -> None:
    """Run a daemon until SIGINT/SIGTERM; a second signal, a moment later, forces the exit."""
    daemon = Daemon(settings)
    loop = asyncio.get_running_loop()
    signals = (signal.SIGINT, signal.SIGTERM)
    first: float | None = None

    def on_signal(sig: signal.Signals) -> None:
        nonlocal first
        now = loop.time()
        if first is None:
            first = now
            daemon.log.info("signal_received", signal=sig.name)
            daemon.request_shutdown()
        elif now - first >= FORCE_EXIT_AFTER:
            daemon.log.warning("forced_exit", signal=sig.name)
            os._exit(1)

    for sig in signals:
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await daemon.serve(ready)
    finally:
        for sig in signals:
            loop.remove_signal_handler(sig)
