"""The events, roles and errors of the runtimed wire protocol (docs/protocol.md).

Plain frozen dataclasses and enums, no I/O: what `protocol.Connection` turns bytes into
and back, and what the daemon, the client and the WebSocket adapter pass around.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

from ..errors import RuntimedError

PREAMBLE: Final = b"\xc0\xde\x01\xac"
"""The magic a stream client sends first, followed by one `PROTOCOL_VERSION` byte."""
PROTOCOL_VERSION: Final = 2
MAX_FRAME_SIZE: Final = 16 * 1024 * 1024
CHANNELS: Final = ("notebook", "control")


class FrameType(enum.IntEnum):
    """The type byte that starts every frame after the handshake."""

    SYNC = 0
    REQUEST = 1
    RESPONSE = 2
    BROADCAST = 3
    PRESENCE = 4
    SNAPSHOT = 5
    SWITCH = 6


class Role(enum.Enum):
    CLIENT = enum.auto()
    SERVER = enum.auto()


class Framing(enum.Enum):
    STREAM = enum.auto()  # Unix socket: preamble, then 4-byte big-endian length prefixes
    MESSAGE = enum.auto()  # WebSocket: one frame per binary message, nothing around it


class ProtocolError(RuntimedError):
    """A broken protocol rule; `code` is one of the spec's snake_case error codes."""


class RemoteProtocolError(ProtocolError):
    """The peer broke the protocol: send it `Connection.error_frame` and close."""


class LocalProtocolError(ProtocolError):
    """We asked to send something the protocol forbids; nothing was emitted."""


# ---------------------------------------------------------------------------- events


@dataclass(frozen=True, slots=True)
class Handshake:
    """The untyped first frame: the client's hello, or the daemon's reply to it."""

    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Sync:
    """One Automerge sync message (`Message.encode()` bytes)."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Request:
    """A client request; `params` holds every JSON key except `id` and `action`."""

    id: int | str
    action: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ErrorInfo:
    code: str
    message: str


@dataclass(frozen=True, slots=True)
class Response:
    """The daemon's answer to one request: `result` when ok, else `error`."""

    id: int | str | None
    ok: bool
    result: dict[str, Any] | None = None
    error: ErrorInfo | None = None


@dataclass(frozen=True, slots=True)
class Broadcast:
    """A daemon event; on the wire `{"event": event, **fields}`."""

    event: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Presence:
    """Ephemeral peer state the daemon relays to the room's other peers."""

    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """The room doc's `save()` bytes, sent to a joining client that asked for them."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Switch:
    """A client's move to a compacted doc: the epoch it switches to and its late changes
    against the previous epoch (raw Automerge changes); `more` means more SWITCH follow."""

    epoch: int
    changes: tuple[bytes, ...] = ()
    more: bool = False


@dataclass(frozen=True, slots=True)
class Closed:
    """The peer ended the stream cleanly, at a frame boundary."""


Event: TypeAlias = (
    Handshake | Sync | Request | Response | Broadcast | Presence | Snapshot | Switch | Closed
)


class NeedData(enum.Enum):
    """`next_event` needs more bytes before it can return an event."""

    NEED_DATA = enum.auto()


NEED_DATA: Final = NeedData.NEED_DATA
