"""The kernel WebSocket's legacy message format, as jupyter_server's gateway client forces it.

A message is one JSON text frame `{header, parent_header, metadata, content, channel,
buffers: []}`; a message with buffers is one binary frame in jupyter_server's
`serialize_binary_message` layout: a big-endian u32 part count n, n u32 offsets from
the frame's start, then the JSON (without `buffers`) and each buffer. Pure: no I/O.
"""

from __future__ import annotations

import datetime
import itertools
import json
import struct
import uuid
from typing import Any

import msgspec

CHANNELS = frozenset({"shell", "control", "stdin"})
"""The channels a front end writes to (IOPub only flows to it)."""
ALL_CHANNELS = CHANNELS | {"iopub"}
"""What a front end reads (for clients of this format: tests, benchmarks)."""

_MAX_PARTS = 10_000


class CodecError(ValueError):
    """A frame that is not a kernel message in the legacy format."""


def encode(msg: dict[str, Any], channel: str) -> str | bytes:
    """A kernel message (MessageDecoder's dict) as the frame a front end reads."""
    buffers = msg.get("buffers") or []
    body = {
        "header": msg["header"],
        "msg_id": msg["header"].get("msg_id"),
        "msg_type": msg["header"].get("msg_type"),
        "parent_header": msg.get("parent_header") or {},
        "metadata": msg.get("metadata") or {},
        "content": msg.get("content") or {},
        "channel": channel,
    }
    if not buffers:
        body["buffers"] = []
        return _dumps(body).decode()
    parts = [_dumps(body), *(bytes(b) for b in buffers)]
    offsets = [4 * (len(parts) + 1)]
    for part in parts[:-1]:
        offsets.append(offsets[-1] + len(part))
    return struct.pack(f"!{len(parts) + 1}I", len(parts), *offsets) + b"".join(parts)


def new_message(msg_type: str, content: dict[str, Any], *, session: str) -> dict[str, Any]:
    """A fresh message as a front end writes it (for this format's clients: tests, bench)."""
    header = {
        "msg_id": uuid.uuid4().hex,
        "msg_type": msg_type,
        "username": "runtimed",
        "session": session,
        "date": datetime.datetime.now(datetime.UTC).isoformat(),
        "version": "5.3",
    }
    return {"header": header, "parent_header": {}, "metadata": {}, "content": content}


def _dumps(value: Any) -> bytes:
    try:
        return msgspec.json.encode(value)
    except (TypeError, msgspec.EncodeError):  # what msgspec refuses, the stdlib may write
        return json.dumps(value, default=str).encode()


def decode(frame: str | bytes, channels: frozenset[str] = CHANNELS) -> tuple[str, dict[str, Any]]:
    """`(channel, message)` from a front end's frame; CodecError says what is wrong.

    The message has jupyter_client's shape (`header`, `parent_header`, `metadata`,
    `content`, `buffers`); a missing channel means shell, as in jupyter_server. The
    frame's bytes decide its layout, not its WebSocket type: jupyter_server's gateway
    client forwards a front end's binary message in a text frame.
    """
    if isinstance(frame, str) or frame.lstrip()[:1] == b"{":
        msg, buffers = _loads(frame), []
    else:
        msg, buffers = _split_binary(frame)
    channel = msg.get("channel") or "shell"
    if channel not in channels:
        raise CodecError(f"no such channel {channel!r}: use one of {sorted(channels)}")
    header = msg.get("header")
    if not isinstance(header, dict):
        raise CodecError("a message needs a header object")
    for key in ("msg_id", "msg_type"):
        if not isinstance(header.get(key), str) or not header[key]:
            raise CodecError(f"header.{key} must be a non-empty string")
    parts: dict[str, Any] = {"header": header}
    for key in ("parent_header", "metadata", "content"):
        value = msg.get(key)
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise CodecError(f"{key} must be an object")
        parts[key] = value
    parts["buffers"] = buffers
    return channel, parts


def _loads(data: str | bytes) -> dict[str, Any]:
    """msgspec first (fast); the stdlib for what it refuses (NaN, huge ints)."""
    try:
        msg = msgspec.json.decode(data)
    except msgspec.DecodeError:
        try:
            msg = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CodecError(f"not JSON: {exc}") from None
    if not isinstance(msg, dict):
        raise CodecError("a message is a JSON object")
    return msg


def _split_binary(frame: bytes) -> tuple[dict[str, Any], list[bytes]]:
    if len(frame) < 8:
        raise CodecError("a binary message is at least 8 bytes")
    (count,) = struct.unpack_from("!I", frame)
    if not 1 <= count <= _MAX_PARTS or len(frame) < 4 * (count + 1):
        raise CodecError(f"binary message with a bad part count ({count})")
    offsets = [*struct.unpack_from(f"!{count}I", frame, 4), len(frame)]
    if offsets != sorted(offsets) or offsets[0] < 4 * (count + 1):
        raise CodecError("binary message offsets out of order or out of range")
    parts = [frame[start:stop] for start, stop in itertools.pairwise(offsets)]
    return _loads(parts[0]), parts[1:]
