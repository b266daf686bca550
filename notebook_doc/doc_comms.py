"""`DocComms`: NotebookDoc's comm reads and writes (the `comms` map mirrors CommState).

Writes go through `CommWrite` values (`comms.py`), so a batch is checked whole and
written as one change; readers return entries sorted by `seq`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._automerge import (
    ROOT,
    ObjId,
    ObjType,
    Reader,
    ScalarType,
    check_text,
    get_obj,
    get_scalar,
    transaction,
)
from .comms import (
    CommSnapshot,
    CommWrite,
    PutComm,
    RawComm,
    RemoveComm,
    SetCommOutputs,
    UpdateCommState,
    apply_comm_write,
    check_blob_hash,
    read_comm,
    read_raw_comm,
)
from .doc_base import DocBase, check_id
from .schema import COMMS, read_str, require_obj


class DocComms(DocBase):
    """The comms part of NotebookDoc."""

    __slots__ = ()

    def put_comm(
        self,
        comm_id: str,
        target_name: str,
        model_module: str,
        model_name: str,
        state_json: str,
        seq: int,
    ) -> None:
        """Open or reopen a comm: replaces the whole entry with empty outputs."""
        self.apply_comm_writes(
            [PutComm(comm_id, target_name, model_module, model_name, state_json, seq)]
        )

    def update_comm_state(self, comm_id: str, state_json: str) -> bool:
        """Replace a comm's full state; False when there is no such comm.

        True means the comm exists and now holds `state_json` (whether or not that
        needed a write).
        """
        return self._comm_write(UpdateCommState(comm_id, state_json))

    def remove_comm(self, comm_id: str) -> bool:
        """False when there is no such comm."""
        return self._comm_write(RemoveComm(comm_id))

    def apply_comm_writes(self, writes: Iterable[CommWrite]) -> bool:
        """Apply many comm writes as ONE change; True if the doc changed.

        Updates and removals of comms that do not exist are skipped; a bad write
        raises InvalidArgument and nothing of the batch is written.
        """
        before = self._doc.get_heads()
        with transaction(self._doc) as tx:
            comms = _comms(tx)
            for write in writes:
                apply_comm_write(tx, comms, write)
        return self._doc.get_heads() != before

    def get_comms(self) -> list[CommSnapshot]:
        """Every comm, sorted by `seq` (replaying in this order rebuilds parents last)."""
        comms = self._container(COMMS)
        if comms is None:
            return []
        snapshots = [read_comm(self._doc, comms, key) for key in self._doc.keys(comms)]
        return sorted(snapshots, key=lambda comm: (comm.seq, comm.comm_id))

    def get_raw_comms(self) -> list[RawComm]:
        """Every comm as stored, states unparsed (cheaper than `get_comms`)."""
        comms = self._container(COMMS)
        if comms is None:
            return []
        return [read_raw_comm(self._doc, comms, key) for key in self._doc.keys(comms)]

    def get_raw_comm(self, comm_id: str) -> RawComm | None:
        return self._read_item(COMMS, "comm_id", comm_id, read_raw_comm)

    def comm_versions(self) -> dict[str, tuple[Any, ...]]:
        """A cheap fingerprint of every comm: its map's id, its state string and its
        number of outputs. Equal fingerprints mean an unchanged comm: the daemon's
        writes change the state (captured outputs too), and a reopen makes a new map."""
        comms = self._container(COMMS)
        if comms is None:
            return {}
        versions: dict[str, tuple[Any, ...]] = {}
        for key in self._doc.keys(comms):
            comm = get_obj(self._doc, comms, key, ObjType.Map)
            if comm is None:
                versions[key] = ()
                continue
            outputs = get_obj(self._doc, comm, "outputs", ObjType.List)
            count = None if outputs is None else self._doc.length(outputs)
            versions[key] = (comm, get_scalar(self._doc, comm, "state"), count)
        return versions

    def get_comm(self, comm_id: str) -> CommSnapshot | None:
        return self._read_item(COMMS, "comm_id", comm_id, read_comm)

    def has_comm(self, comm_id: str) -> bool:
        """Whether the comm is in the doc (cheaper than reading its state)."""
        return self._comm_obj(comm_id) is not None

    def get_comm_state_json(self, comm_id: str) -> str | None:
        """The raw stored state string (no parsing), or None when there is no such comm."""
        comm = self._comm_obj(comm_id)
        if comm is None:
            return None
        return read_str(self._doc, comm, "state", f"comms[{comm_id!r}]")

    def _comm_obj(self, comm_id: str) -> ObjId | None:
        check_id("comm_id", comm_id)
        comms = self._container(COMMS)
        return None if comms is None else get_obj(self._doc, comms, comm_id, ObjType.Map)

    def clear_comms(self) -> bool:
        """Remove every comm (kernel restart, shutdown, death); False when already empty."""
        with transaction(self._doc) as tx:
            comms = _comms(tx)
            keys = tx.keys(comms)
            for key in keys:
                tx.delete(comms, key)
            return bool(keys)

    def append_comm_output(self, comm_id: str, output_hash: str) -> bool:
        """Append a captured output's blob hash; False when there is no such comm."""
        check_blob_hash(output_hash)
        with transaction(self._doc) as tx:
            comm = _comm(tx, comm_id)
            if comm is None:
                return False
            outputs = get_obj(tx, comm, "outputs", ObjType.List)
            if outputs is None:
                outputs = tx.put_object(comm, "outputs", ObjType.List)
            tx.insert(outputs, tx.length(outputs), ScalarType.Str, output_hash)
            return True

    def set_comm_outputs(self, comm_id: str, outputs: list[str]) -> bool:
        """Make a comm's captured outputs exactly `outputs`; False when nothing changed."""
        before = self._doc.get_heads()
        self._comm_write(SetCommOutputs(comm_id, tuple(outputs)))
        return self._doc.get_heads() != before

    def clear_comm_outputs(self, comm_id: str) -> bool:
        """False when there is no such comm or it has no outputs."""
        with transaction(self._doc) as tx:
            comm = _comm(tx, comm_id)
            outputs = None if comm is None else get_obj(tx, comm, "outputs", ObjType.List)
            if outputs is None or tx.length(outputs) == 0:
                return False
            for index in range(tx.length(outputs) - 1, -1, -1):
                tx.delete(outputs, index)
            return True

    def _comm_write(self, write: CommWrite) -> bool:
        with transaction(self._doc) as tx:
            return apply_comm_write(tx, _comms(tx), write)


def _comms(reader: Reader) -> ObjId:
    return require_obj(reader, ROOT, COMMS, ObjType.Map, "root.comms")


def _comm(reader: Reader, comm_id: str) -> ObjId | None:
    check_text(comm_id, "comm_id")
    return get_obj(reader, _comms(reader), comm_id, ObjType.Map)
