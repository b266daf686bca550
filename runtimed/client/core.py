"""An async Python client: handshake, a local doc kept in sync, requests and broadcasts.

    async with Client("my-notebook") as client:
        await client.request("launch_kernel")
        cell = client.doc.add_cell(source="1 + 1")
        await client.push()
        outcome = await client.run_cell(cell)   # {"status": "ok", ...} once it ended

The client is a thin loop around the same sans-I/O `protocol.Connection` the daemon
uses. Local edits go through `client.doc` (a `NotebookDoc`), then `push()` syncs them
(`doc_sync`: the doc, SYNC and SNAPSHOT, the move to a compacted doc).

The bytes travel over a transport (`transports`): the Unix socket by default, or
`WebSocketTransport(url, token)` for the daemon's WebSocket port. With
`autostart=True`, a client that finds no daemon on its Unix socket runs `runtimed
start` there (which detaches one, or reports the one that won a race) and connects
again.

The client reads the daemon's frames in a task of its own, in an anyio task group
that `connect` enters and `aclose` leaves: both belong to one task, as `async with
Client(...)` has them (a helper task that connects, e.g. under `asyncio.gather`, must
close it too).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
from collections import deque
from collections.abc import Callable
from typing import Any, ClassVar, Self

import anyio
import structlog

from ..errors import RuntimedError
from ..service.autostart import start_daemon
from ..wire import (
    NEED_DATA,
    PROTOCOL_VERSION,
    Broadcast,
    Closed,
    Connection,
    Handshake,
    Presence,
    ProtocolError,
    Request,
    Response,
    Role,
    Snapshot,
    Sync,
)
from .doc_sync import DocSync
from .errors import ClientError
from .handshake import accepted, hello
from .transports import ClientTransport, UnixSocketTransport

log = structlog.get_logger(__name__)


class Client(DocSync):
    """One connection to the daemon, on the notebook channel (or the control channel)."""

    # The protocol this client speaks (its hello says so); a daemon speaking another
    # one refuses the handshake.
    protocol_version: ClassVar[int] = PROTOCOL_VERSION

    def __init__(
        self,
        notebook_id: str | None = None,
        *,
        socket_path: str | os.PathLike[str] | None = None,
        path: str | None = None,
        create: bool = False,
        snapshot: bool = True,
        name: str = "runtimed.client",
        timeout: float = 10.0,
        history: int = 100_000,
        autostart: bool = False,
        transport: ClientTransport | None = None,
    ) -> None:
        """`transport` replaces the Unix socket at `socket_path` (e.g. a WebSocketTransport);
        `autostart` applies to the Unix socket only."""
        self.notebook_id = notebook_id
        if transport is None:
            transport = UnixSocketTransport(socket_path)
        elif socket_path is not None:
            raise ValueError("pass socket_path or transport, not both")
        self._transport = transport
        self.socket_path = (
            transport.socket_path if isinstance(transport, UnixSocketTransport) else None
        )
        self.path = path
        self.create = create  # a `path` that does not exist is created, not refused
        self.snapshot = snapshot
        self.name = name
        self.timeout = timeout
        self.autostart = autostart
        # What `runtimed start` printed when this client had to start the daemon.
        self.autostart_report: str | None = None
        super().__init__()  # the doc and its sync state
        # Recent broadcasts and presence, for tests and tools; old ones fall off so memory
        # stays bounded (a collaborator's cursor sends presence for as long as it moves).
        self.broadcasts: deque[Broadcast] = deque(maxlen=history)
        self.presence: deque[dict] = deque(maxlen=history)
        self.handshake: dict[str, Any] = {}
        self.comms_from_sync: list[dict] | None = None  # the last comm_sync's comms
        self.kernel_status: str | None = None
        self.joined = False
        self._conn = Connection(Role.CLIENT, framing=transport.framing)
        self._connected = False
        # The reader belongs to this Client, not to the task that called connect: connect
        # and aclose may run in different tasks (a fixture's set-up and teardown,
        # `asyncio.wait_for(client.connect(), t)`), which a task group entered in connect
        # refuses. aclose ends it, as websockets' connections end theirs.
        self._reader: asyncio.Task[None] | None = None
        self._pending: dict[int | str, asyncio.Future[Response]] = {}
        self._ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._subscribers: list[asyncio.Queue[Broadcast]] = []
        self._closed_error: ClientError | None = None
        self._write_lock = asyncio.Lock()

    # --- lifetime ----------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def connect(self) -> None:
        """Connect and hand-shake; with `autostart`, start a daemon if none answers.
        The reader then runs until `aclose`."""
        if self._reader is not None:
            raise ClientError("connected", "this client is connected already")
        try:
            await self._open_socket()
        except ClientError as exc:
            if exc.code != "no_daemon" or not self.autostart:
                raise
            await self._start_daemon()
            await self._open_socket()
        try:
            with anyio.fail_after(self.timeout):
                await self._handshake()
        except TimeoutError:
            await self.aclose()
            raise ClientError(
                "timeout",
                f"the daemon at {self._transport.address} accepted the connection but did not "
                f"answer the handshake within {self.timeout:g} s",
            ) from None
        self._reader = asyncio.get_running_loop().create_task(
            self._read_loop(), name=f"client reader {self.name}"
        )
        try:
            if self.notebook_id is not None:
                # The join sequence ends with kernel_status: by then a snapshot is loaded.
                await self.wait_for(
                    lambda c: c.joined, self.timeout, "the room never sent its welcome"
                )
        except BaseException:
            await self.aclose()  # no `async with` will: its __aenter__ failed
            raise

    async def _open_socket(self) -> None:
        try:
            await self._transport.open(self.timeout)
        except RuntimedError as exc:
            raise ClientError(exc.code, exc.message) from exc
        self._connected = True

    async def _start_daemon(self) -> None:
        """Run `runtimed start` on our socket; it returns once the daemon answers."""
        if self.socket_path is None:
            raise ClientError("no_daemon", f"nothing answers at {self._transport.address}")
        try:
            self.autostart_report = await start_daemon(self.socket_path)
        except RuntimedError as exc:
            raise ClientError(exc.code, exc.message) from exc

    async def _handshake(self) -> None:
        payload = hello(
            self.notebook_id,
            protocol=self.protocol_version,
            name=self.name,
            snapshot=self.snapshot,
            path=self.path,
            create=self.create,
        )
        await self._write(self._conn.send(Handshake(payload)))
        reply = await self._next_event()
        try:
            payload = accepted(
                reply, protocol=self.protocol_version, address=self._transport.address
            )
        except ClientError:
            await self.aclose()
            raise
        self.handshake = payload
        self.epoch = payload.get("epoch")

    async def aclose(self) -> None:
        """Stop the reader, then close the connection; idempotent."""
        reader, self._reader = self._reader, None
        if reader is not None and reader is not asyncio.current_task():
            reader.cancel()
            await asyncio.wait([reader])  # our own cancellation still reaches us
        if self._connected:
            self._connected = False
            with contextlib.suppress(Exception):
                await self._transport.aclose()
        self._fail_pending(ClientError("closed", "the client was closed"))

    # --- requests and waiting ----------------------------------------------------------

    async def request(self, action: str, *, timeout: float | None = None, **params: Any) -> dict:
        """Send a request and wait for its response; an error response raises ClientError."""
        if self._closed_error is not None:
            raise self._closed_error
        request_id = next(self._ids)
        future: asyncio.Future[Response] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            await self._write(self._conn.send(Request(request_id, action, params)))
            with anyio.fail_after(timeout or max(self.timeout, 60)):
                response = await future
        finally:
            self._pending.pop(request_id, None)
        if not response.ok:
            error = response.error
            raise ClientError(error.code if error else "error", error.message if error else "")
        return response.result or {}

    async def run_cell(self, cell_id: str, *, timeout: float = 60.0) -> dict[str, Any]:
        """Run a cell as the doc holds it (local edits pushed first) and wait for its end.

        Returns the `execution_done` broadcast's fields: `status` ("ok", "error" with
        `ename` and `evalue`, or "aborted"), `execution_count`, `msg_id`. By then the
        cell's outputs and the widgets it touched are in `self.doc`.
        """
        await self.wait_synced()
        finished = self.subscribe()
        try:
            msg_id = (await self.request("execute_cell", cell_id=cell_id))["msg_id"]
            ended: list[dict[str, Any]] = []

            def done(client: Client) -> bool:
                while not finished.empty():
                    event = finished.get_nowait()
                    if event.event == "execution_done" and event.fields.get("msg_id") == msg_id:
                        ended.append(event.fields)
                return bool(ended)

            await self.wait_for(done, timeout, f"cell {cell_id} did not finish in {timeout:g} s")
            return ended[0]
        finally:
            self._subscribers.remove(finished)

    async def send_presence(self, payload: dict) -> None:
        await self._write(self._conn.send(Presence(payload)))

    def subscribe(self) -> asyncio.Queue[Broadcast]:
        """A queue that receives every later broadcast."""
        queue: asyncio.Queue[Broadcast] = asyncio.Queue()
        self._subscribers.append(queue)
        return queue

    async def wait_for(
        self, predicate: Callable[[Client], bool], timeout: float = 10.0, what: str = ""
    ) -> None:
        """Wait until `predicate(self)` holds, re-checked after every incoming frame."""
        try:
            async with asyncio.timeout(timeout):
                async with self._changed:
                    # Checked once per frame, not once more after: a predicate may read
                    # the whole doc (1,000 widgets take tens of ms).
                    while not predicate(self):
                        if self._closed_error is not None:
                            raise self._closed_error
                        await self._changed.wait()
        except TimeoutError:
            raise TimeoutError(what or "condition not met") from None

    # --- the loop ------------------------------------------------------------------------

    async def _write(self, data: bytes) -> None:
        if not self._connected:
            raise ClientError("closed", "not connected")
        async with self._write_lock:
            await self._send_locked(data)

    async def _send_locked(self, data: bytes) -> None:
        """Send with the write lock held (the caller's)."""
        try:
            await self._transport.send(data)
        except RuntimedError as exc:
            raise ClientError(exc.code, exc.message) from exc

    async def _next_event(self) -> Any:
        while True:
            event = self._conn.next_event()
            if event is not NEED_DATA:
                return event
            self._conn.receive_data(await self._transport.receive())

    async def _read_loop(self) -> None:
        try:
            while True:
                event = await self._next_event()
                if isinstance(event, Closed):
                    raise ClientError("closed", "the daemon closed the connection")
                await self._handle(event)
                async with self._changed:
                    self._changed.notify_all()
        except Exception as exc:  # the daemon's word, a broken socket, or a bug of ours
            if not isinstance(exc, ClientError | ProtocolError | OSError):
                log.exception("client_reader_failed", client=self.name)
            error = exc if isinstance(exc, ClientError) else ClientError("closed", str(exc))
            # The daemon's fatal error frame, if one came, says why better than the close.
            error = self._closed_error or error
            self._closed_error = error
            self._fail_pending(error)
            async with self._changed:
                self._changed.notify_all()

    async def _handle(self, event: Any) -> None:
        if isinstance(event, Snapshot):
            await self._on_snapshot(event.data)
        elif isinstance(event, Sync):
            await self._on_sync(event.data)
        elif isinstance(event, Response):
            future = self._pending.get(event.id) if event.id is not None else None
            if future is not None and not future.done():
                future.set_result(event)
        elif isinstance(event, Broadcast):
            self._on_broadcast(event)
        elif isinstance(event, Presence):
            self.presence.append(event.payload)

    def _on_broadcast(self, event: Broadcast) -> None:
        self.broadcasts.append(event)
        if event.event == "compaction":
            self._compaction = event.fields
        if event.event == "comm_sync":
            self.comms_from_sync = event.fields.get("comms", [])
        elif event.event == "kernel_status":
            self.kernel_status = event.fields.get("status")
            self.joined = True
        if event.event == "error" and event.fields.get("fatal"):
            self._closed_error = ClientError(
                event.fields.get("code", "error"), event.fields.get("message", "")
            )
        for queue in self._subscribers:
            queue.put_nowait(event)

    def _fail_pending(self, error: ClientError) -> None:
        for future in self._pending.values():
            if not future.done():
                future.set_exception(error)
        self._pending.clear()
