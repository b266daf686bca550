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

import base64
import binascii
import enum
import struct
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Final, TypeAlias

import msgspec

PREAMBLE: Final = b"\xc0\xde\x01\xac"
"""The magic a stream client sends first, followed by one `PROTOCOL_VERSION` byte."""
PROTOCOL_VERSION: Final = 2
MAX_FRAME_SIZE: Final = 16 * 1024 * 1024
CHANNELS: Final = ("notebook", "control")

_LENGTH: Final = struct.Struct(">I")


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


class ProtocolError(Exception):
    """A broken protocol rule; `code` is one of the spec's snake_case error codes."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


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


# ------------------------------------------------------------------------------ JSON

_json_encoder: Final = msgspec.json.Encoder()
_json_object_decoder: Final = msgspec.json.Decoder(dict[str, Any])


def _encode_json(value: dict[str, Any]) -> bytes:
    try:
        return _json_encoder.encode(value)
    except (TypeError, ValueError, RecursionError, msgspec.EncodeError) as exc:
        raise LocalProtocolError("bad_event", f"payload is not JSON-serializable: {exc}") from exc


def _decode_json_object(body: bytes, code: str, what: str) -> dict[str, Any]:
    """Decode a JSON object; any failure (bad UTF-8, depth, syntax) is the peer's fault."""
    try:
        return _json_object_decoder.decode(body)
    except UnicodeDecodeError as exc:
        raise RemoteProtocolError(code, f"{what}: invalid UTF-8 ({exc.reason})") from None
    except RecursionError:
        raise RemoteProtocolError(code, f"{what}: JSON nested too deeply") from None
    except (msgspec.DecodeError, ValueError) as exc:
        raise RemoteProtocolError(code, f"{what}: invalid JSON object ({exc})") from None


def _is_request_id(value: object) -> bool:
    return isinstance(value, int | str) and not isinstance(value, bool)


def _handshake_problem(payload: object, sender: Role) -> str | None:
    """What is wrong with a handshake frame's shape, if anything (None: nothing).

    Shared by both directions so we never send what the peer's Connection rejects.
    Only the shape is checked; `messages.parse_handshake` validates the hello's fields.
    """
    if not isinstance(payload, dict):
        return "the handshake must be a JSON object"
    if sender is Role.CLIENT:
        channel = payload.get("channel")
        if channel not in CHANNELS:  # a tuple: membership by ==, safe for unhashable values
            return f'"channel" must be "notebook" or "control", got {channel!r}'
    elif not isinstance(payload.get("ok"), bool):
        return 'the handshake reply needs a boolean "ok"'
    return None


# ------------------------------------------------------------------ typed frame bodies


class _LastEncoded:
    """The room sends one event object to every peer in turn: encode it once.

    Identity, not equality, is the key (events hold dicts), and the event is kept
    alive with its bytes so its id cannot be reused while cached.
    """

    event: Event | None = None
    encoded: tuple[FrameType, bytes] = (FrameType.SYNC, b"")


def _encode_typed(event: Event) -> tuple[FrameType, bytes]:
    """The type byte and payload for an event after the handshake."""
    if event is _LastEncoded.event:
        return _LastEncoded.encoded
    encoded = _encode_typed_uncached(event)
    if isinstance(event, Broadcast | Presence):
        _LastEncoded.event, _LastEncoded.encoded = event, encoded
    return encoded


def _encode_typed_uncached(event: Event) -> tuple[FrameType, bytes]:
    match event:
        case Sync(data) | Snapshot(data) if isinstance(data, bytes | bytearray | memoryview):
            frame_type = FrameType.SYNC if isinstance(event, Sync) else FrameType.SNAPSHOT
            return frame_type, bytes(data)
        case Request(req_id, str() as action, dict() as params) if (
            _is_request_id(req_id) and "id" not in params and "action" not in params
        ):
            return FrameType.REQUEST, _encode_json({"id": req_id, "action": action, **params})
        case Response():
            return FrameType.RESPONSE, _encode_json(_response_body(event))
        case Broadcast(str() as name, dict() as fields) if "event" not in fields:
            return FrameType.BROADCAST, _encode_json({"event": name, **fields})
        case Presence(dict() as payload):
            return FrameType.PRESENCE, _encode_json(payload)
        case Switch(int() as epoch, tuple() as changes, bool() as more) if all(
            isinstance(change, bytes) for change in changes
        ):
            body = {"epoch": epoch, "changes": [_b64encode(c) for c in changes], "more": more}
            return FrameType.SWITCH, _encode_json(body)
    raise LocalProtocolError("bad_event", f"not a well-formed frame event: {event!r}")


def _response_body(response: Response) -> dict[str, Any]:
    if response.id is None or _is_request_id(response.id):
        match response:
            case Response(resp_id, True, None | dict() as result, None):
                return {"id": resp_id, "ok": True, "result": {} if result is None else result}
            case Response(resp_id, False, None, ErrorInfo(str() as code, str() as message)):
                return {"id": resp_id, "ok": False, "error": {"code": code, "message": message}}
    raise LocalProtocolError(
        "bad_event", f"need ok=True with a result or ok=False with an error: {response!r}"
    )


def _decode_typed(frame_type: FrameType, body: bytes) -> Event:
    """The event a typed frame's payload stands for; a malformed payload is a bad frame."""
    if frame_type is FrameType.SYNC:
        return Sync(body)
    if frame_type is FrameType.SNAPSHOT:
        return Snapshot(body)
    obj = _decode_json_object(body, "bad_frame", f"{frame_type.name} payload")
    match frame_type:
        case FrameType.PRESENCE:
            return Presence(obj)
        case FrameType.SWITCH:
            return _decode_switch(obj)
        case FrameType.REQUEST:
            req_id, action = obj.pop("id", None), obj.pop("action", None)
            if not _is_request_id(req_id) or not isinstance(action, str):
                raise RemoteProtocolError(
                    "bad_frame", 'a REQUEST needs an "id" (integer or string) and a string "action"'
                )
            return Request(req_id, action, obj)
        case FrameType.BROADCAST:
            name = obj.pop("event", None)
            if not isinstance(name, str):
                raise RemoteProtocolError("bad_frame", 'a BROADCAST needs a string "event"')
            return Broadcast(name, obj)
    return _decode_response(obj)


def _decode_switch(obj: dict[str, Any]) -> Switch:
    match obj:
        case {"epoch": int() as epoch, "changes": list() as changes} if (
            not isinstance(epoch, bool)
            and all(isinstance(c, str) for c in changes)
            and isinstance(obj.get("more", False), bool)
        ):
            try:
                raw = tuple(base64.b64decode(c, validate=True) for c in changes)
            except binascii.Error as exc:
                message = f"SWITCH changes: bad base64 ({exc})"
                raise RemoteProtocolError("bad_switch", message) from None
            return Switch(epoch, raw, obj.get("more", False))
    raise RemoteProtocolError(
        "bad_switch",
        'a SWITCH needs an integer "epoch", a "changes" list of base64 strings '
        'and an optional boolean "more"',
    )


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _decode_response(obj: dict[str, Any]) -> Response:
    resp_id = obj.get("id", ...)
    if not (resp_id is None or _is_request_id(resp_id)):
        raise RemoteProtocolError("bad_frame", 'a RESPONSE needs an "id" (integer, string or null)')
    match obj:
        case {"ok": True, "result": dict() as result}:
            return Response(resp_id, True, result=result)
        case {"ok": False, "error": {"code": str() as code, "message": str() as message}}:
            return Response(resp_id, False, error=ErrorInfo(code, message))
    raise RemoteProtocolError(
        "bad_frame",
        'a RESPONSE needs "ok": true with a "result" object, '
        'or "ok": false with an "error" {"code", "message"}',
    )


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
        try:
            frame_type = FrameType(frame[0])
        except ValueError:
            raise RemoteProtocolError("bad_frame", f"unknown frame type 0x{frame[0]:02x}") from None
        if self._peer not in _SENDERS[frame_type]:
            raise RemoteProtocolError(
                "bad_frame", f"a {self._peer.name.lower()} may not send {frame_type.name} frames"
            )
        return _decode_typed(frame_type, frame[1:])

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
        payload = _decode_json_object(frame, "bad_handshake", "handshake")
        problem = _handshake_problem(payload, self._peer)
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
        frame_type, payload = _encode_typed(event)
        if self.role not in _SENDERS[frame_type]:
            raise LocalProtocolError(
                "wrong_direction", f"a {self.role.name.lower()} may not send {frame_type.name}"
            )
        return self._frame(bytes((frame_type,)), payload)

    def _send_handshake(self, payload: dict[str, Any]) -> bytes:
        if self._sent_handshake:
            raise LocalProtocolError("bad_event", "the handshake was already sent")
        if self.role is Role.SERVER and self._reading in (_Reading.PREAMBLE, _Reading.HANDSHAKE):
            raise LocalProtocolError("handshake_pending", "reply only after the client's hello")
        problem = _handshake_problem(payload, self.role)
        if problem is not None:
            raise LocalProtocolError("bad_handshake", problem)
        data = self._frame(_encode_json(payload))
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
            data = self._frame(_encode_json(refusal))
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
