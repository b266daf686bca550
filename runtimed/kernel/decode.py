"""Kernel wire frames to jupyter_client's message dict, checked and fast.

`MessageDecoder` replaces `Session.deserialize`: same dict shape, HMAC checked, but
about 8x faster, `header.date` is left as the ISO string the kernel sent, `buffers` are
`bytes`, and there is no replay (digest history) check.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

import msgspec
import structlog
from jupyter_client.session import Session

log = structlog.get_logger(__name__)

DELIM = b"<IDS|MSG>"


class MalformedMessage(ValueError):
    """Frames from a kernel socket that are not a valid, correctly signed message."""


class MessageDecoder:
    """Wire frames to jupyter_client's message dict, skipping (and logging) bad ones."""

    def __init__(self, session: Session, logger: Any = log) -> None:
        self._auth = session.auth
        self._json = session.unpacker == "json"
        self._unpack = _json_loads if self._json else session.unpack
        self._log = logger

    def decode(self, frames: list[bytes]) -> dict[str, Any] | None:
        """The message, or None (logged) when the frames are malformed or badly signed."""
        try:
            return self._decode(frames)
        except MalformedMessage as exc:
            self._log.warning("malformed kernel message skipped", reason=str(exc))
            return None

    def _decode(self, frames: list[bytes]) -> dict[str, Any]:
        try:
            start = frames.index(DELIM) + 1
        except ValueError:
            raise MalformedMessage("no <IDS|MSG> delimiter") from None
        if len(frames) < start + 5:
            raise MalformedMessage(f"{len(frames) - start} frames after the delimiter, need 5")
        signature, *parts = frames[start : start + 5]
        if self._auth is not None:
            digest = self._auth.copy()
            for part in parts:
                digest.update(part)
            if not hmac.compare_digest(digest.hexdigest().encode(), signature):
                raise MalformedMessage("bad HMAC signature")
        header, parent_header, metadata, content = self._unpack_parts(parts)
        msg_id, msg_type = header.get("msg_id"), header.get("msg_type")
        if not isinstance(msg_id, str) or not isinstance(msg_type, str):
            raise MalformedMessage("header without a string msg_id and msg_type")
        return {
            "header": header,
            "msg_id": msg_id,
            "msg_type": msg_type,
            "parent_header": parent_header,
            "metadata": metadata,
            "content": content,
            "buffers": frames[start + 5 :],
        }

    def _unpack_parts(self, parts: list[bytes]) -> list[dict[str, Any]]:
        """The four JSON objects; msgspec straight away for the usual message (no Python
        call per part), part by part (with the stdlib's leniency) for the rest."""
        if self._json:
            try:
                values = list(map(_msgspec_decode, parts))
            except msgspec.DecodeError:
                pass
            else:
                if all(type(value) is dict for value in values):
                    return values
        return list(map(self._unpack_dict, parts))

    def _unpack_dict(self, frame: bytes) -> dict[str, Any]:
        try:
            value = self._unpack(frame)
        except Exception as exc:
            raise MalformedMessage(f"undecodable frame: {exc}") from None
        if not isinstance(value, dict):
            raise MalformedMessage(f"expected a JSON object, got {type(value).__name__}")
        return value


_msgspec_decode = msgspec.json.Decoder().decode


def _json_loads(frame: bytes) -> Any:
    """msgspec first (fast); the stdlib for what it refuses (NaN, huge ints, lone surrogates)."""
    try:
        return _msgspec_decode(frame)
    except msgspec.DecodeError:
        return json.loads(frame)


def parent_id(msg: dict[str, Any]) -> str:
    """The msg_id a decoded message answers or belongs to; "" when it names none."""
    parent = msg.get("parent_header")
    msg_id = parent.get("msg_id") if isinstance(parent, dict) else None
    return msg_id if isinstance(msg_id, str) else ""
