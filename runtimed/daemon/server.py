"""The daemon: a Unix socket listener, its connections and its rooms.

Each connection is a thin loop around a sans-I/O `protocol.Connection`: bytes in,
events out, events dispatched to the room. Every task has an owner: the daemon owns
the listener and the rooms, a connection owns its writer and its request tasks, and
shutdown is ordered (stop accepting, tell peers, close rooms: flush, stop kernels,
save; remove the socket).
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

import structlog

from notebook_doc import (
    IpynbError,
    NotebookDoc,
    NotebookDocError,
    doc_filename,
    from_ipynb,
    is_temp_name,
)
from notebook_doc import load_or_create as load_doc_file

from .. import __version__
from ..blob_store import BlobStore
from ..config import Settings
from ..errors import RequestFailed
from ..gc import collect_garbage
from ..private_files import check_private_dir
from ..service.lock import DaemonAlreadyRunning, DaemonLock
from ..trust import Notary, notebook_bytes_signed
from ..wire import (
    PROTOCOL_VERSION,
    Connection,
    Role,
)
from . import notebook_file, stored
from .connection import PeerSession, Receive, StreamTransport
from .limits import KernelSlots, check_room_limit, raise_fd_limit
from .memory import freeze_startup_objects, give_back_periodically
from .paths import checked_ipynb_path
from .peer import FrameTransport, Peer
from .room import NotebookRoom
from .websocket import WebListener

log = structlog.get_logger(__name__)

READ_CHUNK = 256 * 1024


class Daemon:
    """Owns the rooms and the listeners; `serve()` runs until `request_shutdown()`."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rooms: dict[str, NotebookRoom] = {}
        self.blobs = BlobStore(settings.blobs_dir)
        self.notary = Notary(settings.trust_dir)
        self.started_at = time.time()
        self._room_locks: dict[str, asyncio.Lock] = {}
        self._connections: set[asyncio.Task[None]] = set()
        self._peers: set[Peer] = set()
        self._stop = asyncio.Event()
        self._server: asyncio.AbstractServer | None = None
        self.web: WebListener | None = None
        self._lock = DaemonLock(settings.socket_path)
        self.kernel_slots = KernelSlots(settings.max_kernels)
        self.log = log.bind(pid=os.getpid())

    # --- listening -------------------------------------------------------------------

    async def serve(self, ready: Callable[[], None] | None = None) -> None:
        """Listen, run until asked to stop, then shut down in order."""
        fd_limit, _hard = raise_fd_limit()  # idle sockets must not starve `runtimed status`
        self.settings.docs_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        # The lock, held until we are gone, decides who serves this socket, not a probe.
        self._lock.acquire()
        try:
            self._remove_stale_temp_files()
            self._server = await self._listen_unix(self.settings.socket_path)
            try:
                if self.settings.ws is not None:
                    self.web = await WebListener.start(self)
                freeze_startup_objects()
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
                trimmer = asyncio.get_running_loop().create_task(give_back_periodically())
                try:
                    await self._stop.wait()
                finally:
                    trimmer.cancel()
            finally:
                await self._shutdown()
        finally:
            self._lock.release()

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
        protocol error; every request gets its own task."""
        # The transport's server runs this in a task it creates; shutdown waits for it.
        task = asyncio.current_task()
        if task is not None:
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)
        peer = Peer(
            conn,
            transport,
            queue_limit=self.settings.peer_queue_limit,
            stall_timeout=self.settings.peer_stall_timeout,
        )
        self._peers.add(peer)
        session = PeerSession(self, peer)
        try:
            async with asyncio.TaskGroup() as tasks:
                writer = tasks.create_task(peer.run_writer())
                session.tasks = tasks
                try:
                    await session.read_loop(receive)
                finally:
                    session.leave()
                    peer.close()
                    writer.cancel()
        except* (ConnectionError, OSError) as group:
            peer.log.info("connection_lost", error=str(group.exceptions[0]))
        finally:
            self._peers.discard(peer)

    # --- rooms -------------------------------------------------------------------------

    async def open_room(
        self, notebook_id: str, ipynb_path: str | None, *, create: bool = False
    ) -> NotebookRoom:
        lock = self._room_locks.setdefault(notebook_id, asyncio.Lock())
        async with lock:
            room = self.rooms.get(notebook_id)
            if room is not None and not room.closed:
                return room
            check_room_limit(self.rooms.values(), self.settings.max_rooms)
            room = self._load_room(notebook_id, ipynb_path, create=create)
            if room.saver is not None:
                await room.saver.opened()  # edits made on disk meanwhile, before anyone joins
            room.on_idle = self._close_idle_room
            room.kernel_bridged_in = self.kernel_bridged_in
            self.rooms[notebook_id] = room
            return room

    def _load_room(self, notebook_id: str, ipynb_path: str | None, *, create: bool) -> NotebookRoom:
        """The room from its stored copy, else from its file, else new; a path with no
        file fails unless the client asked to create it (no phantom notebooks)."""
        doc_path = self.settings.docs_dir / doc_filename(notebook_id)
        path = checked_ipynb_path(ipynb_path) if ipynb_path else None
        current = _read_notebook_file(path) if path else None
        if path is not None and current is None and not create:
            raise RequestFailed(
                "no_such_notebook",
                f"{path} does not exist (to create it, say so: `create: true` in the "
                "handshake, `--create` on the command line)",
            )
        room_log = self.log.bind(notebook_id=notebook_id)
        if doc_path.exists():
            doc, warning = load_doc_file(doc_path, notebook_id)
            if warning:
                room_log.warning("doc_quarantined", detail=warning)
            if not warning:
                return self._room(notebook_id, doc, doc_path, path)
        if current is not None:
            assert path is not None
            doc, signed = self._doc_from_ipynb(notebook_id, current, path)
            room = self._room(notebook_id, doc, doc_path, path, signed=signed)
            if room.saver is not None:
                room.saver.loaded(current)
        else:
            room = self._room(notebook_id, NotebookDoc.new(notebook_id), doc_path, path)
            if path is None:
                room.fresh_heads = room.doc.get_heads()
                return room
            if room.saver is not None:
                room.saver.changed()  # the file the client asked for
        room.persister.changed()
        return room

    def _doc_from_ipynb(
        self, notebook_id: str, version: notebook_file.FileVersion, path: Path
    ) -> tuple[NotebookDoc, bool]:
        """The file's doc, and whether its signature is in the trust store."""
        data = version.data
        try:
            doc = from_ipynb(data, notebook_id=notebook_id, store_blob=self.blobs.put)
        except (OSError, IpynbError) as exc:
            raise RequestFailed("bad_notebook", f"cannot open {path}: {exc}") from exc
        return doc, notebook_bytes_signed(self.notary, data)

    def _room(
        self,
        notebook_id: str,
        doc: NotebookDoc,
        doc_path: Path,
        path: Path | None,
        *,
        signed: bool = False,
    ) -> NotebookRoom:
        return NotebookRoom(
            notebook_id,
            doc,
            settings=self.settings,
            blobs=self.blobs,
            doc_path=doc_path,
            notary=self.notary,
            ipynb_path=path,
            signed=signed,
        )

    def _close_idle_room(self, room: NotebookRoom) -> None:
        async def close() -> None:
            await room.close()
            if self.rooms.get(room.notebook_id) is room:
                del self.rooms[room.notebook_id]

        task = asyncio.get_running_loop().create_task(close())
        self._connections.add(task)  # owned: shutdown waits for it
        task.add_done_callback(self._connections.discard)

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

    def kernel_bridged_in(self, connection_file: str) -> str | None:
        """The open room whose kernel uses this connection file, if any."""
        wanted = os.path.realpath(connection_file)
        for room in self.rooms.values():
            kernel = room.kernel
            if kernel is None or kernel.connection_file is None or room.closed:
                continue
            if os.path.realpath(kernel.connection_file) == wanted:
                return room.notebook_id
        return None

    # --- shutdown ----------------------------------------------------------------------

    async def _shutdown(self) -> None:
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
        for room in list(self.rooms.values()):
            await room.close()
        self.rooms.clear()
        if self._connections:
            _done, pending = await asyncio.wait(list(self._connections), timeout=5)
            for task in pending:
                task.cancel()
        if self.web is not None:
            await self.web.wait_closed()
        with contextlib.suppress(FileNotFoundError):
            self.settings.socket_path.unlink()
        self.log.info("stopped")


def _read_notebook_file(path: Path) -> notebook_file.FileVersion | None:
    try:
        return notebook_file.read(path)
    except OSError as exc:
        raise RequestFailed("bad_notebook", f"cannot read {path}: {exc.strerror or exc}") from exc


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
