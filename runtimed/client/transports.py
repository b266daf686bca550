"""How a `Client` reaches the daemon: a Unix socket, or the WebSocket port.

A transport moves whole chunks of bytes and knows nothing of the protocol: the
client's sans-I/O `Connection` is told the transport's framing (a byte stream with
length prefixes on the socket, one frame per message on a WebSocket). Tests and
tools can pass any object with the same four calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Protocol

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from ..config import default_socket_path
from ..errors import RuntimedError
from ..wire import MAX_FRAME_SIZE, Framing

READ_SIZE = 256 * 1024


class TransportError(RuntimedError):
    """The daemon cannot be reached (`no_daemon`) or the connection broke (`closed`)."""


class ClientTransport(Protocol):
    """Bytes to and from the daemon."""

    framing: Framing
    address: str  # what error messages name: a socket path or a URL

    async def open(self, timeout: float) -> None:
        """Connect; TransportError `no_daemon` when nothing answers in time."""
        ...

    async def send(self, data: bytes) -> None:
        """Write bytes (one frame on a WebSocket) and wait until they are handed over."""
        ...

    async def receive(self) -> bytes:
        """The next bytes (one frame on a WebSocket); b"" once the daemon closed."""
        ...

    async def aclose(self) -> None:
        """Close; idempotent."""
        ...


class UnixSocketTransport:
    """The daemon's Unix socket (the default, and what autostart can start)."""

    framing = Framing.STREAM

    def __init__(self, socket_path: str | os.PathLike[str] | None = None) -> None:
        self.socket_path = Path(socket_path) if socket_path else default_socket_path()
        self.address = str(self.socket_path)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self, timeout: float) -> None:
        try:
            self._reader, self._writer = await asyncio.wait_for(
                asyncio.open_unix_connection(self.address), timeout
            )
        except (OSError, TimeoutError) as exc:
            raise TransportError(
                "no_daemon",
                f"cannot connect to {self.address}: {exc} (is the daemon running? "
                "start it with `runtimed start`)",
            ) from exc

    async def send(self, data: bytes) -> None:
        if self._writer is None:
            raise TransportError("closed", "not connected")
        self._writer.write(data)
        await self._writer.drain()

    async def receive(self) -> bytes:
        assert self._reader is not None
        return await self._reader.read(READ_SIZE)

    async def aclose(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class WebSocketTransport:
    """The daemon's WebSocket port (`runtimed serve --ws`), with its token."""

    framing = Framing.MESSAGE

    def __init__(self, url: str, token: str) -> None:
        self.address = url
        self._token = token
        self._ws: ClientConnection | None = None

    async def open(self, timeout: float) -> None:
        try:
            self._ws = await connect(
                self.address,
                additional_headers={"Authorization": f"Bearer {self._token}"},
                max_size=MAX_FRAME_SIZE + 1,
                open_timeout=timeout,
            )
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            raise TransportError("no_daemon", f"cannot connect to {self.address}: {exc}") from exc

    async def send(self, data: bytes) -> None:
        if self._ws is None:
            raise TransportError("closed", "not connected")
        try:
            await self._ws.send(data)
        except ConnectionClosed as exc:
            raise TransportError("closed", f"the daemon closed the connection: {exc}") from None

    async def receive(self) -> bytes:
        assert self._ws is not None
        try:
            message = await self._ws.recv()
        except ConnectionClosed:
            return b""
        return message.encode() if isinstance(message, str) else message

    async def aclose(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
