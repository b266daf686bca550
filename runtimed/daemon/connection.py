"""One client connection, whatever its transport: bytes in, events out, each dispatched.

`PeerSession` is the per-connection dispatch (handshake, sync, presence, requests on
the notebook or control channel); the daemon (server.py) owns the listeners, the room
registry and the connection's group. Every request error reaches the client with its
own code (docs/errors.md); a bug of ours is `internal_error` and the connection stays.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup

from notebook_doc import NotebookDocError

from .. import __version__
from ..errors import RequestFailed, RuntimedError
from ..wire import (
    NEED_DATA,
    Closed,
    Handshake,
    Presence,
    RemoteProtocolError,
    Request,
    Switch,
    Sync,
)
from ..wire import messages as m
from .peer import Peer

if TYPE_CHECKING:
    from .room import NotebookRoom
    from .server import Daemon

Receive = Callable[[], Awaitable[bytes]]
"""A transport's read: the next bytes (b"" at the end); may raise RemoteProtocolError."""


class StreamTransport:
    """A peer's frames over an asyncio stream: one write and one drain per batch."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer

    async def send_frames(self, frames: list[bytes]) -> None:
        self.writer.write(b"".join(frames))
        await self.writer.drain()

    def send_nowait(self, frames: list[bytes]) -> bool:
        """Write at once when nothing earlier is still waiting in the transport's buffer
        (so nothing to drain, no stall to time); False: use `send_frames`."""
        transport = self.writer.transport
        if transport.is_closing() or transport.get_write_buffer_size():
            return False
        transport.write(frames[0] if len(frames) == 1 else b"".join(frames))
        return True

    def send_now(self, frame: bytes) -> None:
        with contextlib.suppress(Exception):
            self.writer.write(frame)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.writer.close()


class PeerSession:
    """One connection's view: its channel, its room, and how its events are handled."""

    def __init__(self, daemon: Daemon, peer: Peer) -> None:
        self.daemon = daemon
        self.peer = peer
        self.channel: str | None = None
        self.room: NotebookRoom | None = None
        self.tasks: TaskGroup | None = None  # the connection's group: one task per request

    async def dispatch(self, event: Any) -> bool:
        """Handle one event; False ends the connection."""
        if isinstance(event, Handshake):
            return await self._handshake(event)
        if isinstance(event, Sync) and self.room is not None:
            try:
                self.room.receive_sync(self.peer, event.data)
            except NotebookDocError as exc:
                self.fatal("bad_sync", f"sync message rejected: {exc}")
                return False
            return True
        if isinstance(event, Switch) and self.room is not None:
            self.room.receive_switch(self.peer, event)
            return True
        if isinstance(event, Request):
            assert self.tasks is not None
            self.tasks.start_soon(self._request, event)
            return True
        if isinstance(event, Presence) and self.room is not None:
            self.room.occupancy.relay_presence(self.peer, event.payload)
            return True
        self.fatal("bad_frame", f"{type(event).__name__} frame is not valid on this channel")
        return False

    async def _handshake(self, event: Handshake) -> bool:
        try:
            hello = m.parse_handshake(event.payload)
            if hello.channel == "notebook":
                self.room = await self.daemon.open_room(
                    hello.notebook_id, hello.path, create=hello.create
                )
        except RuntimedError as exc:
            self.fatal(exc.code, exc.message)
            return False
        self.channel = hello.channel
        if hello.client is not None:
            self.peer.name = hello.client.name
        notebook_id = hello.notebook_id if self.room else None
        epoch = self.room.compactor.epoch if self.room else None
        self.peer.send(
            Handshake(
                m.handshake_ok(daemon_version=__version__, notebook_id=notebook_id, epoch=epoch)
            )
        )
        if self.room is not None:
            self.room.occupancy.join(self.peer, snapshot=hello.snapshot)
        return True

    async def _request(self, req: Request) -> None:
        try:
            action = m.parse_request(req, channel=self.channel or "control")
            if isinstance(action, m.LaunchKernel | m.AttachKernel) and self.room is not None:
                with self.daemon.kernel_slots.claim(self.room, self.daemon.rooms.values()):
                    result = await self.room.handle_request(self.peer, action)
            elif self.room is not None:
                result = await self.room.handle_request(self.peer, action)
            else:
                result = await self._control(action)
            response = m.ok_response(req.id, result)
        except RuntimedError as exc:  # every documented code reaches the client as itself
            response = m.error_response(req.id, exc.code, exc.message)
        except Exception as exc:  # a bug of ours must not end the connection
            self.peer.log.exception("request_failed", action=req.action)
            response = m.error_response(req.id, "internal_error", f"{type(exc).__name__}: {exc}")
        self.peer.send(response)

    async def _control(self, action: Any) -> dict:
        daemon = self.daemon
        if isinstance(action, m.Ping):
            return {"pong": True, "version": __version__}
        if isinstance(action, m.DaemonInfo):
            return daemon.daemon_info()
        if isinstance(action, m.ListRooms):
            return {"rooms": [room.info() for room in daemon.rooms.values()]}
        if isinstance(action, m.ShutdownDaemon):
            asyncio.get_running_loop().call_soon(daemon.request_shutdown)
            return {"stopping": True}
        if isinstance(action, m.Gc):
            dropped = daemon.drop_missing() if action.drop_missing else []
            return {**daemon.collect_garbage(action.min_age), "stored_dropped": dropped}
        if isinstance(action, m.ListStored):
            return {"stored": daemon.stored_copies()}
        if isinstance(action, m.Forget):
            return daemon.forget(action.notebook_id)
        raise RequestFailed("unknown_action", f"{type(action).__name__} is not a control action")

    def fatal(self, code: str, message: str) -> None:
        """The spec's error frame, then close."""
        self.peer.log.warning("protocol_error", code=code, message=message)
        self.peer.abort(code, message)

    def leave(self) -> None:
        if self.room is not None:
            self.room.occupancy.leave(self.peer)

    async def read_loop(self, receive: Receive) -> None:
        """Bytes in, events out, each dispatched, until EOF or a protocol error."""
        conn = self.peer.conn
        # A connection that never completes its hello holds a slot for nothing.
        hello_deadline = anyio.current_time() + self.daemon.settings.handshake_timeout
        while not self.peer.closed:
            try:
                if self.channel is None:
                    with anyio.CancelScope(deadline=hello_deadline) as hello:
                        data = await receive()
                    if hello.cancelled_caught:
                        self.fatal("bad_handshake", "no handshake within the time allowed")
                        return
                else:
                    data = await receive()
                conn.receive_data(data)
                while (event := conn.next_event()) is not NEED_DATA:
                    if isinstance(event, Closed) or not await self.dispatch(event):
                        return
            except RemoteProtocolError as exc:
                self.fatal(exc.code, exc.message)
                return
