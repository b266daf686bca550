"""The async Python client of the daemon (docs/protocol.md), over a swappable transport.

    async with Client("my-notebook") as client:
        ...

`core` holds `Client`; `transports` the Unix-socket and WebSocket transports. The
client imports nothing of the daemon: it speaks only the wire protocol.
"""

from .core import Client, ClientError
from .transports import ClientTransport, TransportError, UnixSocketTransport, WebSocketTransport

__all__ = [
    "Client",
    "ClientError",
    "ClientTransport",
    "TransportError",
    "UnixSocketTransport",
    "WebSocketTransport",
]
