"""The dual-write: CommState (merged at once) mirrored into the doc's `comms` map (coalesced).

CommState takes every comm message the moment it arrives; the mirror only remembers
which comms are dirty and asks the room's coalescer for a flush. A flush writes every
dirty comm from CommState, which already holds the latest state, in one doc change:
a burst of 20,000 slider moves becomes a few hundred doc changes and nothing is lost.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from typing import Any

import msgspec
import structlog

from notebook_doc import (
    CommWrite,
    NotebookDoc,
    PutComm,
    RemoveComm,
    SetCommOutputs,
    UpdateCommState,
)

from ..blob_store import BlobError, BlobStore
from .comm_state import OUTPUT_MODEL, BufferPath, CommEntry, CommState

log = structlog.get_logger(__name__)

# A single state value whose JSON is larger than this goes to the blob store.
LARGE_VALUE_LIMIT = 64 * 1024
# A string this short cannot encode to more than the limit (at worst 6 bytes a
# character, \uXXXX, plus the quotes): no need to encode it to know.
_SURELY_SMALL = (LARGE_VALUE_LIMIT - 2) // 6

JSON_MEDIA_TYPE = "application/json"
BINARY_MEDIA_TYPE = "application/octet-stream"
_OPEN, _UPDATE, _CLOSE = "open", "update", "close"
_MOVED = object()  # a binary value that left the JSON state for the buffers
_json = msgspec.json.Encoder()


def blob_ref(hash_: str) -> dict[str, str]:
    return {"$blob": hash_}


def is_blob_ref(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get("$blob"), str)


def _set_path(target: Any, path: tuple[str | int, ...], value: Any) -> Any:
    """Return `target` with `value` placed at `path`, copying only the containers on the way."""
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(target, dict):
        copy = dict(target)
        copy[head] = _set_path(copy.get(head), rest, value)
        return copy
    if isinstance(target, list) and isinstance(head, int) and 0 <= head < len(target):
        copy_list = list(target)
        copy_list[head] = _set_path(copy_list[head], rest, value)
        return copy_list
    # The path does not exist in the JSON state: make room for it as a map.
    return {head: _set_path(None, rest, value)}


# Per comm, per path: the value last seen there and its blob hash (None: small, inline).
# Identity is the key: CommState keeps an untouched value's object across updates, so
# an unchanged 5 MB value is not encoded, hashed and looked up again at every flush.
StoredValues = dict[str, dict[BufferPath, tuple[Any, str | None]]]


BlobPut = Callable[[bytes, str], str]


def doc_state_json(
    entry: CommEntry, blobs: BlobStore | BlobPut | None, stored: StoredValues | None = None
) -> str:
    """The state as the doc stores it: buffers and large values moved out as {"$blob"}.

    `blobs` is the store, or a function that stores `(data, media_type)` and returns
    the hash (the mirror's, which may write in the background).
    """
    state: Any = entry.state
    if blobs is None:
        return _json.encode(state).decode()
    put: BlobPut = blobs.put if isinstance(blobs, BlobStore) else blobs
    seen = {} if stored is None else stored.setdefault(entry.comm_id, {})
    current: dict[BufferPath, tuple[Any, str | None]] = {}

    def hash_of(path: BufferPath, value: Any, store: Callable[[], str | None]) -> str | None:
        known = seen.get(path)
        hash_ = known[1] if known is not None and known[0] is value else store()
        current[path] = (value, hash_)
        return hash_

    def large_json(value: Any) -> str | None:
        encoded = _json.encode(value)
        return put(encoded, JSON_MEDIA_TYPE) if len(encoded) > LARGE_VALUE_LIMIT else None

    for key, value in entry.state.items():
        if isinstance(value, str) and len(value) <= _SURELY_SMALL:
            continue  # most values: inline whatever their content
        if isinstance(value, str | list | dict) and not is_blob_ref(value):
            hash_ = hash_of((key,), value, lambda v=value: large_json(v))
            if hash_ is not None:
                state = _set_path(state, (key,), blob_ref(hash_))
    for path, data in entry.buffers.items():
        hash_ = hash_of(path, data, lambda d=data: put(bytes(d), BINARY_MEDIA_TYPE))
        state = _set_path(state, path, blob_ref(hash_))
    if stored is not None:
        stored[entry.comm_id] = current  # values no longer there are forgotten
    return _json.encode(state).decode()


def resolve_blob(blobs: BlobStore, hash_: str) -> Any:
    """A `{"$blob"}` value: parsed JSON for a large value, bytes for a binary buffer."""
    if blobs.info(hash_).media_type == JSON_MEDIA_TYPE:
        return blobs.get_json(hash_)
    return blobs.get(hash_)


def state_from_doc(
    state: dict[str, Any], blobs: BlobStore
) -> tuple[dict[str, Any], dict[tuple[str | int, ...], bytes]]:
    """The inverse of `doc_state_json`: large values back in place, binaries as buffers.

    A blob that is missing or corrupt stays a reference (and is logged): the rest of
    the widget is still worth having.
    """
    buffers: dict[tuple[str | int, ...], bytes] = {}

    def walk(value: Any, path: tuple[str | int, ...]) -> Any:
        if is_blob_ref(value):
            try:
                resolved = resolve_blob(blobs, value["$blob"])
            except BlobError as exc:
                log.warning("widget_blob_unavailable", path=list(path), error=exc.message)
                return value
            if isinstance(resolved, bytes):
                buffers[path] = resolved
                return _MOVED
            return resolved
        if isinstance(value, dict):
            items = ((k, walk(v, (*path, k))) for k, v in value.items())
            return {k: v for k, v in items if v is not _MOVED}
        if isinstance(value, list):
            return [
                None if (v := walk(item, (*path, i))) is _MOVED else v
                for i, item in enumerate(value)
            ]
        return value

    return walk(state, ()), buffers


class CommMirror:
    """Keeps `doc.comms` equal to CommState, one coalesced flush at a time."""

    def __init__(
        self,
        doc: NotebookDoc,
        comm_state: CommState,
        *,
        blobs: BlobStore | None,
        schedule: Callable[[], None],
        on_storage_error: Callable[[OSError], None] | None = None,
        spawn: Callable[..., None] | None = None,
    ) -> None:
        self.doc = doc
        self.comm_state = comm_state
        self.blobs = blobs
        self._schedule = schedule
        self._on_storage_error = on_storage_error
        self._dirty: dict[str, str] = {}
        self._clear_pending = False
        self._stored: StoredValues = {}
        # New blobs are written by a worker thread, so the event loop never waits on the
        # disk (a 5 MB value and two fsyncs); a comm whose blob is still being written
        # stays dirty and reaches the doc with the flush after it is on disk: a doc never
        # names a blob that is not there. The writes run in `spawn`'s task group (the
        # room's); without one, or once `in_background` is off (close), in place.
        self._spawn = spawn
        self.in_background = spawn is not None
        self._writing: set[str] = set()  # the hashes being written
        self._all_written = asyncio.Event()
        self._all_written.set()
        self._unwritten = False  # set while building one comm's state

    # --- what CommState just did -------------------------------------------------

    def opened(self, comm_id: str) -> None:
        self._mark(comm_id, _OPEN)

    def updated(self, comm_id: str) -> None:
        # An update to a comm whose open is not flushed yet is carried by that open.
        self._mark(comm_id, self._dirty.get(comm_id) or _UPDATE)

    def closed(self, comm_id: str) -> None:
        self._stored.pop(comm_id, None)
        self._mark(comm_id, _CLOSE)

    def cleared(self) -> None:
        """Restart, shutdown or death: the doc's comms go in the next flush, before anything new."""
        self._dirty.clear()
        self._stored.clear()
        self._clear_pending = True
        self._schedule()

    def resync_all(self) -> None:
        """Rewrite every comm from CommState: after the doc's comms were damaged."""
        self._clear_pending = True
        self._dirty = {entry.comm_id: _OPEN for entry in self.comm_state.get_all()}
        self._schedule()

    def _mark(self, comm_id: str, op: str) -> None:
        self._dirty[comm_id] = op
        self._schedule()

    # --- the write -----------------------------------------------------------------

    def flush(self) -> bool:
        """Write everything dirty into the doc; True if the doc changed."""
        changed = False
        if self._clear_pending:
            self._clear_pending = False
            changed = self.doc.clear_comms()
        writes: list[CommWrite] = []
        for comm_id, op in list(self._dirty.items()):
            comm_writes = self._writes_for(comm_id, op)
            if comm_writes is not None:
                writes.extend(comm_writes)
                del self._dirty[comm_id]
        if writes:
            changed = self.doc.apply_comm_writes(writes) or changed
        return changed

    def _writes_for(self, comm_id: str, op: str) -> list[CommWrite] | None:
        """The doc writes for one comm; None while one of its blobs is being written."""
        entry = self.comm_state.get(comm_id)
        if op == _CLOSE or entry is None:
            return [RemoveComm(comm_id)]
        self._unwritten = False
        state_json = doc_state_json(entry, self._put if self.blobs else None, self._stored)
        if self._unwritten or self._awaits_blob(comm_id):
            return None
        writes: list[CommWrite]
        if op == _UPDATE and self.doc.has_comm(comm_id):
            writes = [UpdateCommState(comm_id, state_json)]
        else:
            writes = [
                PutComm(
                    comm_id,
                    entry.target_name,
                    entry.model_module,
                    entry.model_name,
                    state_json,
                    entry.seq,
                )
            ]
        if entry.model_name == OUTPUT_MODEL:
            writes.append(SetCommOutputs(comm_id, tuple(entry.outputs)))
        return writes

    # --- blobs, written off the event loop ----------------------------------------------

    def _awaits_blob(self, comm_id: str) -> bool:
        """A blob of the comm's state is still being written. Its value's hash is
        remembered from the try that started the write, so the flushes that come
        meanwhile (a slider beside a 5 MB image: every 16 ms) neither encode nor hash
        the value again: 3-8 ms of the loop each."""
        stored = self._stored.get(comm_id)
        return bool(self._writing and stored) and any(
            hash_ in self._writing for _, hash_ in stored.values()
        )

    def _forget_hash(self, hash_: str) -> None:
        """A blob that did not reach the disk: the next try stores its value again."""
        for paths in self._stored.values():
            for path in [p for p, (_, known) in paths.items() if known == hash_]:
                del paths[path]

    def _put(self, data: bytes, media_type: str) -> str:
        assert self.blobs is not None
        hash_ = hashlib.sha256(data).hexdigest()
        if hash_ in self._writing:
            self._unwritten = True
        elif not self.blobs.has(hash_):
            if not self.in_background or self._spawn is None:
                return self.blobs.put(data, media_type)
            self._unwritten = True
            self._spawn(self._write, hash_, data, media_type)
            self._writing.add(hash_)
            self._all_written.clear()
        return hash_

    async def _write(self, hash_: str, data: bytes, media_type: str) -> None:
        assert self.blobs is not None
        error: OSError | BlobError | None = None
        try:
            await asyncio.to_thread(self.blobs.put, data, media_type)
        except (OSError, BlobError) as exc:
            error = exc
        finally:
            self._writing.discard(hash_)
            if not self._writing:
                self._all_written.set()
        if error is not None:
            self._forget_hash(hash_)
            log.error("blob_write_failed", hash=hash_, error=str(error))
            if self._on_storage_error is not None:
                self._on_storage_error(error if isinstance(error, OSError) else OSError(str(error)))
            return
        self._schedule()  # the comms waiting for it can go into the doc now

    async def drain(self) -> None:
        """Wait for every blob write in flight (before the last flush on close)."""
        await self._all_written.wait()
