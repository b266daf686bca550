"""A room peer's transport over a WebSocket: one binary message per runtimed frame."""

from __future__ import annotations

import asyncio
import contextlib

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ..wire import RemoteProtocolError


class WebSocketTransport:
    """A peer's frames over a WebSocket: one binary message per frame.

    `send_now` (an error frame right before a close) cannot write synchronously on a
    WebSocket, so the frame waits for `close`, which sends it and then the close frame.
    """

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self._last_frames: list[bytes] = []
        self._closing: asyncio.Task[None] | None = None

    async def receive(self) -> bytes:
        """The next frame; b"" once the peer is gone. Text or empty messages are bad frames."""
        try:
            message = await self.ws.recv()
        except ConnectionClosed:
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

    def send_now(self, frame: bytes) -> None:
        self._last_frames.append(frame)

    def close(self) -> None:
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())

    async def wait_closed(self) -> None:
        if self._closing is not None:
            await self._closing

    async def _close(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            for frame in self._last_frames:
                await self.ws.send(frame)
        await self.ws.close()
