"""The runtimed wire protocol (docs/protocol.md) as a sans-I/O state machine.

Bytes in, typed events out; events in, bytes out. Nothing here touches a socket, an
event loop or a clock, so the Unix-socket server, the client and the WebSocket adapter
are thin loops around one `Connection` per peer, and every framing rule (preamble,
size cap, handshake, type bytes, directions, errors) is tested without I/O.

Rules a reader of the spec should know are enforced here:

- STREAM framing (Unix socket): the client opens with `PREAMBLE` + one version byte,
  then every frame is a 4-byte big-endian length N and N bytes. MESSAGE framing
  (WebSocket): one frame per binary message, no preamble, no length prefix.
- The first frame each way is an untyped JSON object (`Handshake`); every later frame
  starts with a `FrameType` byte. A frame sent against the direction column of the
  spec's table (say a client sending RESPONSE) is a bad frame.
- The peer breaking a rule raises `RemoteProtocolError`, and every later `next_event`
  raises it again. Asking `send` for something the rules forbid raises
  `LocalProtocolError` and changes nothing: `send` either returns bytes and advances
  the state, or raises and leaves the connection as it was.
"""

from __future__ import annotations

import enum
import struct
from collections import deque
from typing import Any, Final

from .events import (
    MAX_FRAME_SIZE,
    NEED_DATA,
    PREAMBLE,
    PROTOCOL_VERSION,
    Broadcast,
    Closed,
    Event,
    FrameType,
    Framing,
    Handshake,
    LocalProtocolError,
    NeedData,
    RemoteProtocolError,
    Role,
)
from .frames import (
    decode_json_object,
    decode_typed,
    encode_json,
    encode_typed,
    handshake_problem,
)

_LENGTH: Final = struct.Struct(">I")


# Who may send each frame type: the direction column of the spec's table.
_SENDERS: Final[dict[FrameType, frozenset[Role]]] = {
    FrameType.SYNC: frozenset(Role),
    FrameType.REQUEST: frozenset({Role.CLIENT}),
    FrameType.RESPONSE: frozenset({Role.SERVER}),
    FrameType.BROADCAST: frozenset({Role.SERVER}),
    FrameType.PRESENCE: frozenset(Role),
    FrameType.SNAPSHOT: frozenset({Role.SERVER}),
    FrameType.SWITCH: frozenset({Role.CLIENT}),
}


# ------------------------------------------------------------------------ connection


class _Reading(enum.Enum):
    PREAMBLE = enum.auto()  # server on a stream: the magic and version come first
    HANDSHAKE = enum.auto()  # the peer's untyped first frame
    FRAMES = enum.auto()  # typed frames
    REFUSED = enum.auto()  # client: the daemon refused the handshake; only EOF may follow


class Connection:
    """One peer's side of a runtimed connection, without any I/O.

    Feed received bytes to `receive_data` (b"" at end of stream) and drain
    `next_event` until it returns `NEED_DATA`; write whatever `send` and `error_frame`
    return.
    """

    def __init__(
        self,
        role: Role,
        *,
        framing: Framing = Framing.STREAM,
        max_frame_size: int = MAX_FRAME_SIZE,
    ) -> None:
        self.role = role
        self.framing = framing
        self.max_frame_size = max_frame_size
        self._peer = Role.CLIENT if role is Role.SERVER else Role.SERVER
        # The spec's direction column, looked up per frame: by type byte for what we
        # read, a tuple (membership by identity first) for what we send.
        self._readable = {int(t): t for t, senders in _SENDERS.items() if self._peer in senders}
        self._sendable = tuple(t for t, senders in _SENDERS.items() if role in senders)
        needs_preamble = role is Role.SERVER and framing is Framing.STREAM
        self._reading = _Reading.PREAMBLE if needs_preamble else _Reading.HANDSHAKE
        self._buffer = bytearray()  # STREAM: received bytes; those before _pos are parsed
        self._pos = 0
        self._messages: deque[bytes] = deque()  # MESSAGE: whole frames not yet parsed
        self._eof = False
        self._error: RemoteProtocolError | None = None
        self._sent_handshake = False
        self._handshake_ok = False
        self._closing = False  # the handshake was refused or an error frame went out

    @property
    def handshake_done(self) -> bool:
        """True once both handshake frames went through and the daemon said ok."""
        return self._handshake_ok

    # --------------------------------------------------------------------- receiving

    def receive_data(self, data: bytes) -> None:
        """Buffer bytes from the peer; b"" means end of stream.

        In MESSAGE framing each call carries exactly one whole frame (one WebSocket
        message); an empty message cannot be told from the end and ends the stream.
        After the peer broke the protocol, further data is dropped unread.
        """
        if self._error is not None:
            return
        if self._eof:
            if data:
                raise LocalProtocolError("data_after_eof", "received data after end of stream")
            return
        if not data:
            self._eof = True
        elif self.framing is Framing.MESSAGE:
            self._messages.append(bytes(data))
        else:
            del self._buffer[: self._pos]
            self._pos = 0
            self._buffer += data

    def next_event(self) -> Event | NeedData:
        """The next event from the peer, or `NEED_DATA`; raises `RemoteProtocolError`."""
        if self._error is not None:
            raise self._error.with_traceback(None)
        try:
            return self._next_event()
        except RemoteProtocolError as exc:
            self._error = exc
            self._buffer.clear()
            self._pos = 0
            self._messages.clear()
            raise

    def _next_event(self) -> Event | NeedData:
        if self._reading is _Reading.PREAMBLE and not self._read_preamble():
            return self._starved("bad_preamble", "stream ended inside the preamble")
        frame = self._read_frame()
        if frame is None:
            return self._starved("bad_frame", "stream ended inside a frame")
        if self._reading is _Reading.HANDSHAKE:
            return self._receive_handshake(frame)
        if self._reading is _Reading.REFUSED:
            raise RemoteProtocolError("bad_frame", "frame after the handshake was refused")
        if not frame:
            raise RemoteProtocolError("bad_frame", "empty frame: a typed frame needs a type byte")
        frame_type = self._readable.get(frame[0])
        if frame_type is None:
            raise self._unreadable(frame[0])
        return decode_typed(frame_type, frame[1:])

    def _unreadable(self, type_byte: int) -> RemoteProtocolError:
        try:
            frame_type = FrameType(type_byte)
        except ValueError:
            return RemoteProtocolError("bad_frame", f"unknown frame type 0x{type_byte:02x}")
        return RemoteProtocolError(
            "bad_frame", f"a {self._peer.name.lower()} may not send {frame_type.name} frames"
        )

    def _starved(self, code: str, truncated: str) -> Event | NeedData:
        """No whole unit is buffered: wait for more, or end cleanly or as truncated."""
        if not self._eof:
            return NEED_DATA
        if self._pos < len(self._buffer):
            raise RemoteProtocolError(code, truncated)
        return Closed()

    def _read_preamble(self) -> bool:
        """Consume the magic and version byte; a wrong byte fails as soon as it arrives."""
        head = bytes(self._buffer[: len(PREAMBLE) + 1])
        if not PREAMBLE.startswith(head[: len(PREAMBLE)]):
            got = head[: len(PREAMBLE)].hex(" ").upper()
            raise RemoteProtocolError("bad_preamble", f"expected magic C0 DE 01 AC, got {got}")
        if len(head) <= len(PREAMBLE):
            return False
        if head[-1] != PROTOCOL_VERSION:
            raise RemoteProtocolError(
                "unsupported_version",
                f"protocol version {head[-1]} is not supported (this side speaks "
                f"{PROTOCOL_VERSION})",
            )
        self._pos = len(head)
        self._reading = _Reading.HANDSHAKE
        return True

    def _read_frame(self) -> bytes | None:
        """The next whole frame, or None; an oversized length fails before its body."""
        if self.framing is Framing.MESSAGE:
            if not self._messages:
                return None
            frame = self._messages.popleft()
            self._check_frame_size(len(frame))
            return frame
        start = self._pos + _LENGTH.size
        if len(self._buffer) < start:
            return None
        (size,) = _LENGTH.unpack_from(self._buffer, self._pos)
        if size > self.max_frame_size:
            self._check_frame_size(size)
        if len(self._buffer) < start + size:
            return None
        with memoryview(self._buffer) as view:
            frame = bytes(view[start : start + size])
        self._pos = start + size
        return frame

    def _check_frame_size(self, size: int) -> None:
        if size > self.max_frame_size:
            raise RemoteProtocolError(
                "frame_too_large", f"frame of {size} bytes exceeds the {self.max_frame_size} cap"
            )

    def _receive_handshake(self, frame: bytes) -> Handshake:
        payload = decode_json_object(frame, "bad_handshake", "handshake")
        problem = handshake_problem(payload, self._peer)
        if problem is not None:
            raise RemoteProtocolError("bad_handshake", problem)
        self._reading = _Reading.FRAMES
        if self.role is Role.CLIENT:
            self._handshake_ok = payload["ok"]
            if not self._handshake_ok:
                self._reading = _Reading.REFUSED
        return Handshake(payload)

    # ----------------------------------------------------------------------- sending

    def send(self, event: Event) -> bytes:
        """The bytes that carry `event` to the peer; raises `LocalProtocolError`."""
        if self._closing:
            raise LocalProtocolError("closing", "nothing may follow a refusal or an error frame")
        if isinstance(event, Handshake):
            return self._send_handshake(event.payload)
        may_send = self._handshake_ok if self.role is Role.SERVER else self._sent_handshake
        if not may_send:
            raise LocalProtocolError(
                "handshake_pending", f"cannot send {type(event).__name__} before the handshake"
            )
        return self._typed_frame(event)

    def _typed_frame(self, event: Event) -> bytes:
        frame_type, payload = encode_typed(event)
        if frame_type not in self._sendable:
            raise LocalProtocolError(
                "wrong_direction", f"a {self.role.name.lower()} may not send {frame_type.name}"
            )
        return self._frame(bytes((frame_type,)), payload)

    def _send_handshake(self, payload: dict[str, Any]) -> bytes:
        if self._sent_handshake:
            raise LocalProtocolError("bad_event", "the handshake was already sent")
        if self.role is Role.SERVER and self._reading in (_Reading.PREAMBLE, _Reading.HANDSHAKE):
            raise LocalProtocolError("handshake_pending", "reply only after the client's hello")
        problem = handshake_problem(payload, self.role)
        if problem is not None:
            raise LocalProtocolError("bad_handshake", problem)
        data = self._frame(encode_json(payload))
        self._sent_handshake = True
        if self.role is Role.SERVER:
            self._handshake_ok = payload["ok"]
            self._closing = not self._handshake_ok
        elif self.framing is Framing.STREAM:
            data = PREAMBLE + bytes((PROTOCOL_VERSION,)) + data
        return data

    def error_frame(self, code: str, message: str) -> bytes:
        """The daemon's last frame before it closes: a refused handshake reply, or,
        once the handshake succeeded, a fatal `error` BROADCAST."""
        if self.role is not Role.SERVER:
            raise LocalProtocolError("wrong_direction", "only the daemon sends error frames")
        if self._closing:
            raise LocalProtocolError("closing", "an error frame or refusal was already sent")
        if not (isinstance(code, str) and isinstance(message, str)):
            raise LocalProtocolError("bad_event", "error code and message must be strings")
        if self._handshake_ok:
            fields = {"code": code, "message": message, "fatal": True}
            data = self._typed_frame(Broadcast("error", fields))
        else:
            refusal = {"ok": False, "error": {"code": code, "message": message}}
            data = self._frame(encode_json(refusal))
        self._closing = True
        return data

    def _frame(self, *parts: bytes) -> bytes:
        """Join a frame's parts, with a length prefix on a stream; enforce the size cap."""
        size = sum(map(len, parts))
        if size > self.max_frame_size:
            raise LocalProtocolError(
                "frame_too_large", f"frame of {size} bytes exceeds the {self.max_frame_size} cap"
            )
        if self.framing is Framing.STREAM:
            return b"".join((_LENGTH.pack(size), *parts))
        return b"".join(parts)
