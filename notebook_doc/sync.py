"""Per-peer sync bookkeeping, so callers of `NotebookDoc` never import automerge."""

from __future__ import annotations

from . import _automerge
from .errors import SyncMessageError

__all__ = ["SyncState", "changes_message", "sync_message_heads"]

_SYNC_MESSAGE_TYPES = (0x42, 0x43)  # v1, and v2 (which adds capabilities after the rest)
_HASH_SIZE = 32
_CHUNK_MAGIC = b"\x85\x6f\x4a\x83"


class SyncState:
    """What one peer is known to have; use a fresh one per peer and per connection."""

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state = _automerge.SyncState()


def sync_message_heads(data: bytes) -> set[bytes]:
    """The heads a peer's sync message says it has: the first field of Automerge's sync
    message (a type byte, a ULEB128 count, then 32-byte change hashes).

    A client learns from it that the daemon has its changes, without waiting for the
    room to go quiet. Raises SyncMessageError for bytes that are not a sync message.
    """
    if not data or data[0] not in _SYNC_MESSAGE_TYPES:
        raise SyncMessageError("not an Automerge sync message")
    count, shift, offset = 0, 0, 1
    while True:
        if offset >= len(data) or shift > 63:
            raise SyncMessageError("sync message heads: bad length")
        byte = data[offset]
        offset += 1
        count |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            break
    end = offset + count * _HASH_SIZE
    if end > len(data):
        raise SyncMessageError("sync message heads: truncated")
    return {data[i : i + _HASH_SIZE] for i in range(offset, end, _HASH_SIZE)}


def _uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if not value:
            out.append(byte)
            return bytes(out)
        out.append(byte | 0x80)


def changes_message(changes: list[bytes]) -> bytes:
    """A sync message that only carries `changes` (no heads, needs or haves).

    The binding can apply changes only through a sync message; receiving this one with
    a throwaway SyncState applies them, queueing any whose dependencies are missing.
    """
    parts = [bytes((_SYNC_MESSAGE_TYPES[0],)), _uleb(0), _uleb(0), _uleb(0), _uleb(len(changes))]
    for change in changes:
        if not isinstance(change, bytes | bytearray):
            raise SyncMessageError(f"a change is bytes, not {type(change).__name__}")
        # A chunk: magic, 4-byte checksum, type (1 change, 2 compressed change).
        if change[:4] != _CHUNK_MAGIC or len(change) < 9 or change[8] not in (1, 2):
            raise SyncMessageError("not an Automerge change (bad chunk header)")
        parts += [_uleb(len(change)), bytes(change)]
    return b"".join(parts)
