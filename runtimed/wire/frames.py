"""Frame payloads: the JSON of a handshake or typed frame, and the event it stands for.

Pure functions of bytes and events (no state): `protocol.Connection` calls them once
it has cut the byte stream into frames. A payload the peer got wrong raises
`RemoteProtocolError`; an event we cannot encode raises `LocalProtocolError`.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any, Final

import msgspec

from .events import (
    CHANNELS,
    Broadcast,
    ErrorInfo,
    Event,
    FrameType,
    LocalProtocolError,
    Presence,
    RemoteProtocolError,
    Request,
    Response,
    Role,
    Snapshot,
    Switch,
    Sync,
)

# ------------------------------------------------------------------------------ JSON

_json_encoder: Final = msgspec.json.Encoder()
_json_object_decoder: Final = msgspec.json.Decoder(dict[str, Any])


def encode_json(value: dict[str, Any]) -> bytes:
    try:
        return _json_encoder.encode(value)
    except (TypeError, ValueError, RecursionError, msgspec.EncodeError) as exc:
        raise LocalProtocolError("bad_event", f"payload is not JSON-serializable: {exc}") from exc


def decode_json_object(body: bytes, code: str, what: str) -> dict[str, Any]:
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


def handshake_problem(payload: object, sender: Role) -> str | None:
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


def encode_typed(event: Event) -> tuple[FrameType, bytes]:
    """The type byte and payload for an event after the handshake."""
    if event is _LastEncoded.event:
        return _LastEncoded.encoded
    encoded = _encode_typed_uncached(event)
    if isinstance(event, Broadcast | Presence):
        _LastEncoded.event, _LastEncoded.encoded = event, encoded
    return encoded


def _encode_typed_uncached(event: Event) -> tuple[FrameType, bytes]:
    match event:  # the most frequent first: a burst's broadcasts
        case Broadcast(str() as name, dict() as fields) if "event" not in fields:
            return FrameType.BROADCAST, encode_json({"event": name, **fields})
        case Sync(data) | Snapshot(data) if isinstance(data, bytes | bytearray | memoryview):
            frame_type = FrameType.SYNC if isinstance(event, Sync) else FrameType.SNAPSHOT
            return frame_type, bytes(data)
        case Request(req_id, str() as action, dict() as params) if (
            _is_request_id(req_id) and "id" not in params and "action" not in params
        ):
            return FrameType.REQUEST, encode_json({"id": req_id, "action": action, **params})
        case Response():
            return FrameType.RESPONSE, encode_json(_response_body(event))
        case Presence(dict() as payload):
            return FrameType.PRESENCE, encode_json(payload)
        case Switch(int() as epoch, tuple() as changes, bool() as more) if all(
            isinstance(change, bytes) for change in changes
        ):
            body = {"epoch": epoch, "changes": [_b64encode(c) for c in changes], "more": more}
            return FrameType.SWITCH, encode_json(body)
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


_PAYLOAD_NAMES: Final = {frame_type: f"{frame_type.name} payload" for frame_type in FrameType}


def decode_typed(frame_type: FrameType, body: bytes) -> Event:
    """The event a typed frame's payload stands for; a malformed payload is a bad frame."""
    if frame_type is FrameType.SYNC:
        return Sync(body)
    if frame_type is FrameType.SNAPSHOT:
        return Snapshot(body)
    obj = decode_json_object(body, "bad_frame", _PAYLOAD_NAMES[frame_type])
    match frame_type:
        case FrameType.PRESENCE:
            return Presence(obj)
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
        case FrameType.SWITCH:
            return _decode_switch(obj)
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
