"""Per-peer sync bookkeeping, so callers of `NotebookDoc` never import automerge."""

from __future__ import annotations

from typing import NamedTuple

from . import _automerge
from .errors import SyncMessageError

__all__ = [
    "SyncMessageSummary",
    "SyncState",
    "changes_message",
    "summarize_sync_message",
    "sync_message_heads",
]

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
    _check_type(data)
    hashes, _ = _read_hashes(data, 1, "heads")
    return set(hashes)


class SyncMessageSummary(NamedTuple):
    """What a sync message says, without decoding its changes."""

    heads: frozenset[bytes]  # the sender's heads
    needs: bool  # it asks for changes by hash
    changes: bool  # it carries changes


def summarize_sync_message(data: bytes) -> SyncMessageSummary:
    """Read a sync message's fields in order: heads, needs, the haves (each a last-sync
    hash list and a length-prefixed Bloom filter), then the count of change chunks.

    The daemon paces its messages by it: one that carries changes moves the receiver's
    heads, so an Automerge peer answers it. Raises SyncMessageError for bytes that are
    not a sync message.
    """
    _check_type(data)
    heads, offset = _read_hashes(data, 1, "heads")
    needs, offset = _read_hashes(data, offset, "needs")
    haves, offset = _read_uleb(data, offset, "haves")
    for _ in range(haves):
        _, offset = _read_hashes(data, offset, "have")
        size, offset = _read_uleb(data, offset, "bloom filter")
        offset += size
    changes, _ = _read_uleb(data, offset, "changes")
    return SyncMessageSummary(frozenset(heads), bool(needs), changes > 0)


def _check_type(data: bytes) -> None:
    if not data or data[0] not in _SYNC_MESSAGE_TYPES:
        raise SyncMessageError("not an Automerge sync message")


def _read_uleb(data: bytes, offset: int, field: str) -> tuple[int, int]:
    """A ULEB128 number at `offset`, and the offset after it."""
    if offset < len(data) and data[offset] < 0x80:  # one byte: every count here, nearly
        return data[offset], offset + 1
    value, shift = 0, 0
    while True:
        if offset >= len(data) or shift > 63:
            raise SyncMessageError(f"sync message {field}: bad length")
        byte = data[offset]
        offset += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, offset


def _read_hashes(data: bytes, offset: int, field: str) -> tuple[list[bytes], int]:
    """A counted list of 32-byte change hashes at `offset`, and the offset after it."""
    count, offset = _read_uleb(data, offset, field)
    end = offset + count * _HASH_SIZE
    if end > len(data):
        raise SyncMessageError(f"sync message {field}: truncated")
    return [data[i : i + _HASH_SIZE] for i in range(offset, end, _HASH_SIZE)], end


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
