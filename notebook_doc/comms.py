"""Comms (live widget models): snapshots, batched write commands, and their application.

The comm path is hot (the daemon flushes coalesced widget bursts here), so every write
looks its comm up by key and compares the stored state string before writing: O(1) in
the number of comms, and nothing written when nothing changed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final, TypeAlias

from ._automerge import (
    ObjId,
    ObjType,
    Reader,
    ScalarType,
    Transaction,
    check_text,
    get,
    get_fields,
    get_obj,
    get_scalar,
    update_str_list,
)
from .errors import InvalidArgument, SchemaError
from .schema import BLOB_HASH, as_str, as_uint, read_str_list

__all__ = [
    "CommSnapshot",
    "CommWrite",
    "PutComm",
    "RawComm",
    "RemoveComm",
    "SetCommOutputs",
    "UpdateCommState",
    "apply_comm_write",
    "check_blob_hash",
    "read_comm",
    "read_comm_outputs",
    "read_raw_comm",
]

_U64_MAX: Final = 2**64 - 1
# Only an Output widget's comm has `outputs` (docs/schema.md); other comms may lack it.
OUTPUT_MODEL: Final = "OutputModel"


@dataclass(frozen=True, slots=True)
class CommSnapshot:
    """One comm as plain Python values; `state` is the parsed state JSON."""

    comm_id: str
    target_name: str
    model_module: str
    model_name: str
    state: dict[str, Any]
    outputs: list[str]
    seq: int


@dataclass(frozen=True, slots=True)
class RawComm:
    """A comm as stored: the state string verbatim, never re-serialised."""

    comm_id: str
    target_name: str
    model_module: str
    model_name: str
    state_json: str
    outputs: tuple[str, ...]
    seq: int


@dataclass(frozen=True, slots=True)
class PutComm:
    """Open (or reopen) a comm: replaces the whole entry, outputs start empty."""

    comm_id: str
    target_name: str
    model_module: str
    model_name: str
    state_json: str
    seq: int


@dataclass(frozen=True, slots=True)
class UpdateCommState:
    """Replace a live comm's full state; ignored when the comm does not exist."""

    comm_id: str
    state_json: str


@dataclass(frozen=True, slots=True)
class RemoveComm:
    """Close a comm; ignored when the comm does not exist."""

    comm_id: str


@dataclass(frozen=True, slots=True)
class SetCommOutputs:
    """Make an Output widget's captured outputs (blob hashes) exactly these; ignored
    when the comm does not exist."""

    comm_id: str
    outputs: tuple[str, ...]


CommWrite: TypeAlias = PutComm | UpdateCommState | RemoveComm | SetCommOutputs


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# One decoder for every state: `json.loads` with a keyword builds a new one per call,
# which cost as much as parsing a slider's state (8 us of 15).
_STRICT_JSON: Final = json.JSONDecoder(parse_constant=_reject_constant)


def parse_state(state_json: str, where: str) -> dict[str, Any]:
    """Parse a state string as strict JSON (no NaN/Infinity, which JS cannot parse)."""
    try:
        state = _STRICT_JSON.decode(state_json)
    except ValueError as exc:
        raise SchemaError(f"{where} is not valid JSON: {exc}") from exc
    if not isinstance(state, dict):
        raise SchemaError(f"{where} is JSON {type(state).__name__}, not an object")
    return state


def check_state_json(state_json: object, comm_id: str) -> str:
    check_text(state_json, f"comm {comm_id!r}: state_json")
    try:
        parse_state(state_json, f"comm {comm_id!r} state")
    except SchemaError as exc:
        raise InvalidArgument(str(exc)) from exc
    return state_json


def check_blob_hash(output_hash: object) -> str:
    if not isinstance(output_hash, str) or not BLOB_HASH.fullmatch(output_hash):
        raise InvalidArgument(f"{output_hash!r} is not a 64-hex blob hash")
    return output_hash


def _check_put(write: PutComm) -> None:
    _check_comm_id(write.comm_id)
    for name in ("target_name", "model_module", "model_name"):
        check_text(getattr(write, name), f"comm {write.comm_id!r}: {name}")
    seq = write.seq
    if isinstance(seq, bool) or not isinstance(seq, int) or not 0 <= seq <= _U64_MAX:
        raise InvalidArgument(f"comm {write.comm_id!r}: seq must be an int in [0, 2**64-1]")
    check_state_json(write.state_json, write.comm_id)


def _check_comm_id(comm_id: object) -> None:
    if not check_text(comm_id, "comm_id"):
        raise InvalidArgument("comm_id must not be empty")


def read_comm(reader: Reader, comms: ObjId, comm_id: str) -> CommSnapshot:
    """Read and check one comm; SchemaError names the first broken field."""
    raw = read_raw_comm(reader, comms, comm_id)
    return CommSnapshot(
        comm_id=comm_id,
        target_name=raw.target_name,
        model_module=raw.model_module,
        model_name=raw.model_name,
        state=parse_state(raw.state_json, f"comms[{comm_id!r}].state"),
        outputs=list(raw.outputs),
        seq=raw.seq,
    )


def read_raw_comm(reader: Reader, comms: ObjId, comm_id: str) -> RawComm:
    """One comm as stored, its state string unparsed (compaction copies it verbatim)."""
    where = f"comms[{comm_id!r}]"
    comm = get_obj(reader, comms, comm_id, ObjType.Map)
    if comm is None:
        raise SchemaError(f"{where} is not a Map")
    fields = get_fields(reader, comm, where)
    # The schema gives `outputs` to OutputModel comms only: without it, there are none.
    outputs = read_str_list(reader, comm, "outputs", where) if "outputs" in fields else []
    for index, output in enumerate(outputs):
        if not BLOB_HASH.fullmatch(output):
            raise SchemaError(f"{where}.outputs[{index}] is not a 64-hex blob hash")
    return RawComm(
        comm_id=comm_id,
        target_name=as_str(fields.get("target_name"), f"{where}.target_name"),
        model_module=as_str(fields.get("model_module"), f"{where}.model_module"),
        model_name=as_str(fields.get("model_name"), f"{where}.model_name"),
        state_json=as_str(fields.get("state"), f"{where}.state"),
        outputs=tuple(outputs),
        seq=as_uint(fields.get("seq"), f"{where}.seq"),
    )


def read_comm_outputs(reader: Reader, comm: ObjId, where: str) -> list[str]:
    """A comm's `outputs`: the schema gives them to OutputModel comms only, so a comm
    without the field reads as having none."""
    if get(reader, comm, "outputs", f"{where}.outputs") is None:
        return []
    return read_str_list(reader, comm, "outputs", where)


def _same_entry(reader: Reader, comm: ObjId, write: PutComm) -> bool:
    """Whether the stored comm already is exactly what `write` would create."""
    fields = {
        "target_name": (ScalarType.Str, write.target_name),
        "model_module": (ScalarType.Str, write.model_module),
        "model_name": (ScalarType.Str, write.model_name),
        "state": (ScalarType.Str, write.state_json),
    }
    if any(get_scalar(reader, comm, key) != value for key, value in fields.items()):
        return False
    seq = get_scalar(reader, comm, "seq")
    outputs = get_obj(reader, comm, "outputs", ObjType.List)
    if write.model_name == OUTPUT_MODEL:
        outputs_as_written = outputs is not None and reader.length(outputs) == 0
    else:
        outputs_as_written = get(reader, comm, "outputs") is None
    return (
        seq is not None
        and seq[0] in (ScalarType.Uint, ScalarType.Int)
        and seq[1] == write.seq
        and outputs_as_written
    )


def _put(tx: Transaction, comms: ObjId, write: PutComm) -> None:
    existing = get_obj(tx, comms, write.comm_id, ObjType.Map)
    if existing is not None and _same_entry(tx, existing, write):
        return
    comm = tx.put_object(comms, write.comm_id, ObjType.Map)
    tx.put(comm, "target_name", ScalarType.Str, write.target_name)
    tx.put(comm, "model_module", ScalarType.Str, write.model_module)
    tx.put(comm, "model_name", ScalarType.Str, write.model_name)
    tx.put(comm, "state", ScalarType.Str, write.state_json)
    if write.model_name == OUTPUT_MODEL:
        tx.put_object(comm, "outputs", ObjType.List)
    tx.put(comm, "seq", ScalarType.Uint, write.seq)


def apply_comm_write(tx: Transaction, comms: ObjId, write: CommWrite) -> bool:
    """Apply one command; False when it targets a comm that does not exist."""
    if isinstance(write, PutComm):
        _check_put(write)
        _put(tx, comms, write)
        return True
    if not isinstance(write, UpdateCommState | RemoveComm | SetCommOutputs):
        raise InvalidArgument(f"{write!r} is not a comm write")
    _check_comm_id(write.comm_id)
    comm = get_obj(tx, comms, write.comm_id, ObjType.Map)
    if comm is None:
        return False
    if isinstance(write, RemoveComm):
        tx.delete(comms, write.comm_id)
        return True
    if isinstance(write, SetCommOutputs):
        new = [check_blob_hash(output) for output in write.outputs]
        where = f"comms[{write.comm_id!r}]"
        outputs = get_obj(tx, comm, "outputs", ObjType.List)
        if outputs is None:
            if not new:
                return True
            outputs = tx.put_object(comm, "outputs", ObjType.List)
        update_str_list(tx, outputs, read_comm_outputs(tx, comm, where), new)
        return True
    if get_scalar(tx, comm, "state") != (ScalarType.Str, write.state_json):
        tx.put(comm, "state", ScalarType.Str, check_state_json(write.state_json, write.comm_id))
    return True
