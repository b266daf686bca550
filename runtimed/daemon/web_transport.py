"""A room peer's transport over a WebSocket: one binary message per runtimed frame."""

from __future__ import annotations

import contextlib

import anyio
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ..wire import RemoteProtocolError


class WebSocketTransport:
    """A peer's frames over a WebSocket: one binary message per frame.

    `send_now` (an error frame right before a close) cannot write synchronously on a
    WebSocket, so the frame waits for `aclose`; `close` only ends the read under way,
    and the handler's `aclose` then sends it and the close frame (no task of its own).
    """

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self._last_frames: list[bytes] = []
        self._closed = False
        self._reading: anyio.CancelScope | None = None

    async def receive(self) -> bytes:
        """The next frame; b"" once the peer is gone or closed. Text or empty messages
        are bad frames."""
        if self._closed:
            return b""
        with anyio.CancelScope() as self._reading:
            try:
                message = await self.ws.recv()
            except ConnectionClosed:
                return b""
            finally:
                self._reading = None
        if self._closed:  # closed while waiting (recv is safe to cancel: nothing is lost)
            return b""
        if isinstance(message, str):
            raise RemoteProtocolError(
                "bad_frame", "text message: runtimed frames travel as binary messages"
            )
        if not message:
            raise RemoteProtocolError("bad_frame", "empty message: a frame needs a type byte")
        return message

    async def send_frames(self, frames: list[bytes]) -> None:
        try:
            for frame in frames:
                await self.ws.send(frame)
        except ConnectionClosed as exc:
            raise ConnectionResetError(f"websocket closed: {exc}") from exc

    def send_nowait(self, frames: list[bytes]) -> bool:
        return False  # a WebSocket send may wait: always `send_frames`

    def send_now(self, frame: bytes) -> None:
        self._last_frames.append(frame)

    def close(self) -> None:
        self._closed = True
        if self._reading is not None:
            self._reading.cancel()

    async def aclose(self) -> None:
        """The last frames, then the close frame."""
        with contextlib.suppress(ConnectionClosed):
            for frame in self._last_frames:
                await self.ws.send(frame)
        await self.ws.close()
