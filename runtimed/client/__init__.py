"""The async Python client of the daemon (docs/protocol.md), over a swappable transport.

    async with Client("my-notebook") as client:
        ...

`core` holds `Client`; `doc_sync` its copy of the room's doc and the sync of it;
`handshake` the hello and the reading of the daemon's reply; `epoch_switch` the
frames that carry late changes into a compacted room; `errors` the `ClientError`
every failure becomes; `transports` the Unix-socket and WebSocket transports. The
client imports nothing of the daemon: it speaks only the wire protocol.
"""

from .core import Client
from .errors import ClientError
from .transports import ClientTransport, TransportError, UnixSocketTransport, WebSocketTransport

__all__ = [
    "Client",
    "ClientError",
    "ClientTransport",
    "TransportError",
    "UnixSocketTransport",
    "WebSocketTransport",
]
