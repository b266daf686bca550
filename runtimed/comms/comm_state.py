"""The legacy in-memory view of every live comm (widget model) of one kernel.

Old clients rebuild their widgets from `comm_sync` broadcasts, which are made from
this state; the doc's `comms` map mirrors it. It is pure logic: no I/O, no asyncio.
Binary values never sit in `state`: like ipywidgets on the wire, they are kept apart,
keyed by their path into the state (`buffer_paths`).
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog

from ..errors import RuntimedError

log = structlog.get_logger(__name__)

BufferPath = tuple[str | int, ...]

OUTPUT_MODEL = "OutputModel"
STATE_METHODS = frozenset({"update", "echo_update"})


class CommMessageError(RuntimedError, ValueError):
    """A comm message (from the kernel or a client) that cannot be applied as given."""

    def __init__(self, message: str) -> None:
        super().__init__("bad_comm_message", message)


@dataclass(slots=True)
class CommEntry:
    """One live comm: its merged JSON state and its binary values by path."""

    comm_id: str
    target_name: str
    model_module: str
    model_name: str
    state: dict[str, Any]
    buffers: dict[BufferPath, bytes] = field(default_factory=dict)
    seq: int = 0
    outputs: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class CommOpen:
    """A validated `comm_open`, ready for `CommState.on_comm_open`."""

    comm_id: str
    target_name: str
    data: dict[str, Any]
    buffer_paths: list[list[str | int]]
    buffers: list[bytes]


@dataclass(frozen=True, slots=True)
class CommUpdate:
    """A validated state-carrying `comm_msg`, ready for `CommState.on_comm_update`."""

    comm_id: str
    state: dict[str, Any]
    buffer_paths: list[list[str | int]]
    buffers: list[bytes]


def _require_comm_id(content: Any) -> str:
    if not isinstance(content, dict):
        raise CommMessageError(f"comm content must be an object, got {type(content).__name__}")
    comm_id = content.get("comm_id")
    if not isinstance(comm_id, str) or not comm_id:
        raise CommMessageError(f"comm_id must be a non-empty string, got {comm_id!r}")
    return comm_id


def _require_data(content: dict[str, Any]) -> dict[str, Any]:
    data = content.get("data", {})
    if not isinstance(data, dict):
        raise CommMessageError(f"comm data must be an object, got {type(data).__name__}")
    return data


def buffer_map(
    buffer_paths: Sequence[Sequence[str | int]], buffers: Sequence[bytes]
) -> dict[BufferPath, bytes]:
    """Pair each buffer with its path, refusing anything that would misplace a byte."""
    if not buffer_paths and not buffers:
        return {}  # nearly every update: a slider moved
    if len(buffer_paths) != len(buffers):
        raise CommMessageError(
            f"{len(buffer_paths)} buffer_paths for {len(buffers)} buffers: they must match"
        )
    mapped: dict[BufferPath, bytes] = {}
    for path, buffer in zip(buffer_paths, buffers, strict=True):
        if not isinstance(path, list | tuple) or not path:
            raise CommMessageError(f"a buffer path must be a non-empty list, got {path!r}")
        for part in path:
            if isinstance(part, bool) or not isinstance(part, str | int):
                raise CommMessageError(f"buffer path parts are strings or ints, got {path!r}")
        if not isinstance(buffer, bytes | bytearray | memoryview):
            raise CommMessageError(f"a buffer must be bytes, got {type(buffer).__name__}")
        mapped[tuple(path)] = bytes(buffer)
    return mapped


def _buffer_paths_of(data: dict[str, Any], buffers: Sequence[bytes]) -> list[list[str | int]]:
    paths = data.get("buffer_paths", [])
    if not isinstance(paths, list):
        raise CommMessageError(f"buffer_paths must be a list, got {type(paths).__name__}")
    buffer_map(paths, buffers)
    return paths


def merge_update(
    state: dict[str, Any],
    buffers: dict[BufferPath, bytes],
    new_state: dict[str, Any],
    new_buffers: dict[BufferPath, bytes],
) -> dict[BufferPath, bytes]:
    """ipywidgets' merge of one update into a state (changed in place) and its buffers
    (returned): a key the update touches, by value or by a buffer under it, replaces
    the whole old value, so the old buffers under that key go."""
    if not buffers and not new_buffers:  # nearly every update: JSON values only
        state.update(new_state)
        return {}
    touched = set(new_state) | {path[0] for path in new_buffers}
    merged = {p: b for p, b in buffers.items() if p[0] not in touched}
    merged.update(new_buffers)
    for path in new_buffers:
        if len(path) == 1 and path[0] not in new_state:
            state.pop(path[0], None)  # its value is binary now
    state.update(new_state)
    return merged


def parse_comm_open(content: Any, buffers: Sequence[bytes] = ()) -> CommOpen:
    """Validate a raw `comm_open` content (kernel or client) into `on_comm_open` arguments."""
    comm_id = _require_comm_id(content)
    target_name = content.get("target_name", "")
    if not isinstance(target_name, str):
        raise CommMessageError(f"target_name must be a string, got {target_name!r}")
    data = _require_data(content)
    state = data.get("state", {})
    if not isinstance(state, dict):
        raise CommMessageError(f"comm {comm_id}: state must be an object")
    paths = _buffer_paths_of(data, buffers)
    return CommOpen(comm_id, target_name, data, paths, list(buffers))


def parse_comm_update(content: Any, buffers: Sequence[bytes] = ()) -> CommUpdate | None:
    """Validate a raw `comm_msg` content; None when it carries no state (custom messages)."""
    comm_id = _require_comm_id(content)
    data = _require_data(content)
    method = data.get("method")
    if not isinstance(method, str) or method not in STATE_METHODS:
        return None
    state = data.get("state")
    if not isinstance(state, dict):
        raise CommMessageError(f"comm {comm_id}: an {method} needs a state object")
    paths = _buffer_paths_of(data, buffers)
    return CommUpdate(comm_id, state, paths, list(buffers))


def parse_comm_close(content: Any) -> str:
    """Validate a raw `comm_close` content; returns the comm_id."""
    return _require_comm_id(content)


def _text(state: dict[str, Any], key: str) -> str:
    value = state.get(key, "")
    return value if isinstance(value, str) else ""


class CommState:
    """Every live comm of one kernel, in open order, plus the Output-widget capture stack.

    The capture stack exists because ipykernel only sets `msg_id` on an Output widget:
    whoever routes outputs must know which widget, if any, captures a given parent
    message. Nested `with out:` blocks capture the same parent; the latest one wins.
    """

    def __init__(self) -> None:
        self._entries: dict[str, CommEntry] = {}
        self._next_seq = 0
        self._captures: list[tuple[str, str]] = []  # (Output comm_id, msg_id), oldest first

    def on_comm_open(
        self,
        comm_id: str,
        target_name: str,
        data: dict[str, Any],
        *,
        buffer_paths: Sequence[Sequence[str | int]] = (),
        buffers: Sequence[bytes] = (),
    ) -> CommEntry:
        """Record a new comm; an open for a live id replaces it with a new seq."""
        state = data.get("state")
        state = dict(state) if isinstance(state, dict) else {}
        entry = CommEntry(
            comm_id=comm_id,
            target_name=target_name,
            model_module=_text(state, "_model_module"),
            model_name=_text(state, "_model_name"),
            state=state,
            buffers=buffer_map(buffer_paths, buffers),
            seq=self._next_seq,
        )
        self._next_seq += 1
        self._entries[comm_id] = entry
        self._track_capture(entry)
        return entry

    def on_comm_update(
        self,
        comm_id: str,
        state: dict[str, Any],
        *,
        buffer_paths: Sequence[Sequence[str | int]] = (),
        buffers: Sequence[bytes] = (),
    ) -> CommEntry | None:
        """Merge an update's top-level keys (`merge_update`); None (and a log line) for
        an unknown comm."""
        new_buffers = buffer_map(buffer_paths, buffers)
        entry = self._entries.get(comm_id)
        if entry is None:
            log.info("update for an unknown comm ignored", comm_id=comm_id)
            return None
        entry.buffers = merge_update(entry.state, entry.buffers, state, new_buffers)
        model_changed = "_model_module" in state or "_model_name" in state
        if model_changed:
            entry.model_module = _text(entry.state, "_model_module")
            entry.model_name = _text(entry.state, "_model_name")
        if model_changed or "msg_id" in state or self._captures:  # else nothing to move
            self._track_capture(entry)
        return entry

    def replace_state(
        self, comm_id: str, state: dict[str, Any], buffers: dict[BufferPath, bytes]
    ) -> CommEntry | None:
        """Set a comm's whole state (the kernel's own answer), not a merge."""
        entry = self._entries.get(comm_id)
        if entry is None:
            return None
        entry.state = dict(state)
        entry.buffers = dict(buffers)
        entry.model_module = _text(entry.state, "_model_module")
        entry.model_name = _text(entry.state, "_model_name")
        self._track_capture(entry)
        return entry

    def restore(self, entry: CommEntry) -> None:
        """Put back a comm saved earlier (the doc on disk, an .ipynb), keeping its seq."""
        self._entries[entry.comm_id] = entry
        self._next_seq = max(self._next_seq, entry.seq + 1)
        self._track_capture(entry)

    def set_outputs(self, comm_id: str, outputs: Sequence[str]) -> CommEntry | None:
        """Replace an Output widget's captured outputs (hashes the router stored)."""
        entry = self._entries.get(comm_id)
        if entry is not None:
            entry.outputs = list(outputs)
        return entry

    def on_comm_close(self, comm_id: str) -> CommEntry | None:
        """Forget a comm; returns what it held, or None if it was unknown."""
        entry = self._entries.pop(comm_id, None)
        if entry is not None:
            self._stop_capture(comm_id)
        return entry

    def clear(self) -> None:
        """Drop everything (kernel restart, shutdown or death): seq restarts at 0."""
        self._entries.clear()
        self._captures.clear()
        self._next_seq = 0

    def get(self, comm_id: str) -> CommEntry | None:
        return self._entries.get(comm_id)

    def get_all(self) -> list[CommEntry]:
        """Every live comm by seq: replaying them in this order opens children first."""
        return sorted(self._entries.values(), key=lambda entry: entry.seq)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, comm_id: object) -> bool:
        return comm_id in self._entries

    def capture_target(self, parent_msg_id: str) -> str | None:
        """The Output widget that captures outputs of `parent_msg_id`, if any."""
        if not parent_msg_id:
            return None
        for comm_id, msg_id in reversed(self._captures):
            if msg_id == parent_msg_id:
                return comm_id
        return None

    def _track_capture(self, entry: CommEntry) -> None:
        """Move an Output widget to the top of the stack when its msg_id changes."""
        msg_id = entry.state.get("msg_id") if entry.model_name == OUTPUT_MODEL else None
        if (entry.comm_id, msg_id) in self._captures:
            return
        self._stop_capture(entry.comm_id)
        if isinstance(msg_id, str) and msg_id:
            self._captures.append((entry.comm_id, msg_id))

    def _stop_capture(self, comm_id: str) -> None:
        self._captures = [capture for capture in self._captures if capture[0] != comm_id]


def to_wire(entry: CommEntry) -> dict[str, Any]:
    """protocol.md's CommSnapshot: state without binaries, buffers base64 beside it."""
    return {
        "comm_id": entry.comm_id,
        "target_name": entry.target_name,
        "model_module": entry.model_module,
        "model_name": entry.model_name,
        "state": entry.state,
        "outputs": list(entry.outputs),
        "seq": entry.seq,
        "buffer_paths": [list(path) for path in entry.buffers],
        "buffers": b64(entry.buffers.values()),
    }


def b64(buffers: Iterable[bytes | bytearray | memoryview]) -> list[str]:
    """Binary buffers as the wire carries them (protocol.md: base64 beside the JSON)."""
    return [base64.b64encode(bytes(data)).decode("ascii") for data in buffers]
