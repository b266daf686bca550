"""The socket protocol (docs/protocol.md), sans-I/O: events, framing and typed messages.

`events` holds the frozen event types, `protocol` the `Connection` state machine that
cuts bytes into frames and keeps the handshake's state, `frames` what each frame's
payload means, `messages` the validated handshake and request structs. Nothing in
this package opens a socket, runs an event loop or reads a clock.
"""

from .events import (
    CHANNELS,
    MAX_FRAME_SIZE,
    NEED_DATA,
    PREAMBLE,
    PROTOCOL_VERSION,
    Broadcast,
    Closed,
    ErrorInfo,
    Event,
    FrameType,
    Framing,
    Handshake,
    LocalProtocolError,
    NeedData,
    Presence,
    ProtocolError,
    RemoteProtocolError,
    Request,
    Response,
    Role,
    Snapshot,
    Switch,
    Sync,
)
from .protocol import Connection

__all__ = [
    "CHANNELS",
    "MAX_FRAME_SIZE",
    "NEED_DATA",
    "PREAMBLE",
    "PROTOCOL_VERSION",
    "Broadcast",
    "Closed",
    "Connection",
    "ErrorInfo",
    "Event",
    "FrameType",
    "Framing",
    "Handshake",
    "LocalProtocolError",
    "NeedData",
    "Presence",
    "ProtocolError",
    "RemoteProtocolError",
    "Request",
    "Response",
    "Role",
    "Snapshot",
    "Switch",
    "Sync",
]
