"""`NotebookDoc`: the schema v3 notebook document and every write the project makes to it.

Every public write is one Automerge transaction, and a write that would not change
the stored value adds no change (the heads stay put), so an idle daemon adds no
history. Reads are strict: a field of the wrong type raises SchemaError naming it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import structlog

from ._automerge import (
    ROOT,
    Document,
    Message,
    ObjId,
    ObjType,
    Reader,
    ScalarType,
    Transaction,
    check_text,
    get,
    get_obj,
    get_scalar,
    insert_text,
    read_json,
    replace_text,
    set_json_key,
    transaction,
    update_json_map,
    update_str_list,
)
from .cells import (
    EXECUTION_STATUSES,
    CellSnapshot,
    NewCell,
    check_cell_type,
    check_output,
    create_cell,
    format_execution_count,
    new_cell_id,
    read_cell,
    restore_cell,
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
from .errors import (
    CellNotFound,
    CorruptDocumentError,
    InvalidArgument,
    NotebookDocError,
    SchemaError,
    SyncMessageError,
)
from .migrations import migrate, migrate_v1_to_v2, migrate_v2_to_v3
from .positions import NoRoom, is_readable_position, keys_between, rekey_span
from .repair import repair
from .schema import (
    CELLS,
    COMMS,
    METADATA,
    NOTEBOOK_ID,
    SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
    read_schema_version,
    read_str,
    read_str_list,
    require_obj,
)
from .sync import SyncState, changes_message

__all__ = ["NotebookDoc"]

log = structlog.get_logger(__name__)

T = TypeVar("T")


class NotebookDoc:
    """One notebook as an Automerge document (schema v3); build it with `new` or `load`."""

    __slots__ = ("_doc", "_notebook_id")

    def __init__(self, doc: Document, notebook_id: str | None) -> None:
        """Wrap a document (internal: use `new`, `empty`, `load` or `fork`).

        The notebook id is remembered once known: it never changes, so `validate`
        can catch a peer that changes or deletes it, and `repair` can put it back.
        """
        self._doc = doc
        self._notebook_id = notebook_id

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def new(cls, notebook_id: str, *, actor_id: bytes | None = None) -> NotebookDoc:
        """An empty v3 notebook: no cells, no metadata, no comms."""
        _check_id("notebook_id", notebook_id)
        doc = Document()
        _set_actor(doc, actor_id)
        with transaction(doc) as tx:
            tx.put(ROOT, SCHEMA_VERSION_KEY, ScalarType.Uint, SCHEMA_VERSION)
            tx.put(ROOT, NOTEBOOK_ID, ScalarType.Str, notebook_id)
            for key in (CELLS, METADATA, COMMS):
                tx.put_object(ROOT, key, ObjType.Map)
        return cls(doc, notebook_id)

    @classmethod
    def empty(cls, *, actor_id: bytes | None = None) -> NotebookDoc:
        """A blank document that a joining peer fills by sync (or replaces by `load`).

        A peer must never build its own skeleton with `new` and then sync: its
        `cells` map would conflict with the room's, and one of them would hide the
        other. Reads fail with SchemaError until the first sync brings the notebook.
        """
        doc = Document()
        _set_actor(doc, actor_id)
        return cls(doc, None)

    @classmethod
    def load(
        cls,
        data: bytes,
        *,
        actor_id: bytes | None = None,
        notebook_id: str | None = None,
        check: bool = True,
    ) -> NotebookDoc:
        """Load saved bytes, migrating v1/v2 documents to v3.

        `notebook_id` is the room's id: a doc that has none (v1 docs could omit it) is
        given it, in one change. Raises CorruptDocumentError (not Automerge),
        UnsupportedSchemaVersion (newer than v3) or SchemaError (a field of the wrong
        type; the message lists them). `check=False` skips that last check, reading
        every field (a third of a 1,000-widget load): for bytes a checking writer made,
        such as the daemon's SNAPSHOT; a broken field still raises when it is read.
        """
        if not isinstance(data, bytes | bytearray | memoryview):
            raise InvalidArgument(f"data must be bytes, not {type(data).__name__}")
        if not data:
            raise CorruptDocumentError("empty data is not an Automerge document")
        try:
            doc = Document.load(bytes(data))
        except Exception as exc:  # the binding raises bare Exception
            raise CorruptDocumentError(f"not an Automerge document: {exc}") from exc
        _set_actor(doc, actor_id)
        migrate(doc)
        if notebook_id is not None and get(doc, ROOT, NOTEBOOK_ID) is None:
            _check_id("notebook_id", notebook_id)
            with transaction(doc) as tx:
                tx.put(ROOT, NOTEBOOK_ID, ScalarType.Str, notebook_id)
            log.info("gave the doc its room's notebook_id", notebook_id=notebook_id)
        notebook = cls(doc, read_str(doc, ROOT, NOTEBOOK_ID, "root"))
        problems = notebook.validate() if check else []
        if problems:
            raise SchemaError("document breaks schema v3: " + "; ".join(problems))
        return notebook

    def save(self) -> bytes:
        """The whole document, compacted (what goes on disk and in a SNAPSHOT frame)."""
        return self._doc.save()

    def save_changes(self) -> bytes:
        """The whole history as its changes joined: `load` takes it like `save()`'s
        bytes. Larger, but made in microseconds where `save()` compresses for tens of
        milliseconds with the GIL held: for a fresh doc with a short history."""
        return b"".join(change.bytes for change in self._doc.get_changes([]))

    def fork(
        self, *, actor_id: bytes | None = None, heads: list[bytes] | None = None
    ) -> NotebookDoc:
        """An independent copy with its own actor id; with `heads`, of the doc as it was
        then (InvalidArgument when this doc does not know those changes)."""
        if heads is None:
            doc = self._doc.fork()
        else:
            try:
                doc = self._doc.fork(list(heads))
            except Exception as exc:  # the binding raises bare Exception
                raise InvalidArgument(f"cannot fork at unknown heads: {exc}") from exc
        _set_actor(doc, actor_id)
        return NotebookDoc(doc, self._notebook_id)

    def merge(self, other: NotebookDoc) -> None:
        """Take in every change `other` has that this doc lacks."""
        if not isinstance(other, NotebookDoc):
            raise InvalidArgument(f"can only merge a NotebookDoc, not {type(other).__name__}")
        self._doc.merge(other._doc)

    def get_heads(self) -> list[bytes]:
        """Hashes of the latest changes; equal heads mean identical documents."""
        return self._doc.get_heads()

    @property
    def actor_id(self) -> bytes:
        return self._doc.get_actor()

    @property
    def notebook_id(self) -> str:
        if self._notebook_id is None:  # an `empty` doc learns its id from the first sync
            self._notebook_id = read_str(self._doc, ROOT, NOTEBOOK_ID, "root")
        return self._notebook_id

    @property
    def schema_version(self) -> int:
        return read_schema_version(self._doc)

    def migrate_v1_to_v2(self) -> bool:
        """Idempotent; False (and no change) unless the doc is v1."""
        return migrate_v1_to_v2(self._doc)

    def migrate_v2_to_v3(self) -> bool:
        """Idempotent; False (and no change) unless the doc is v2."""
        return migrate_v2_to_v3(self._doc)

    # ----------------------------------------------------------------------- sync

    def generate_sync_message(self, state: SyncState) -> bytes | None:
        """The next message for the peer `state` tracks; None when it has everything."""
        message = self._doc.generate_sync_message(_core_state(state))
        return None if message is None else message.encode()

    def receive_sync_message(self, state: SyncState, data: bytes) -> bool:
        """Apply a peer's message; True if the doc changed.

        Undecodable bytes raise SyncMessageError and leave the doc untouched. The
        peer may have written anything: call `validate()` after a change.
        """
        core_state = _core_state(state)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise SyncMessageError(f"a sync message is bytes, not {type(data).__name__}")
        try:
            message = Message.decode(bytes(data))
        except Exception as exc:  # the binding raises bare Exception
            raise SyncMessageError(f"undecodable sync message: {exc}") from exc
        before = self._doc.get_heads()
        try:
            self._doc.receive_sync_message(core_state, message)
        except Exception as exc:
            raise SyncMessageError(f"sync message does not apply: {exc}") from exc
        return self._doc.get_heads() != before

    # ------------------------------------------------------------ raw changes

    def get_changes_since(self, heads: list[bytes]) -> list[bytes]:
        """Every change that is not an ancestor of one of `heads` (unknown hashes are
        ignored): what a peer that has `heads` may lack."""
        return [change.bytes for change in self._doc.get_changes(list(heads))]

    def apply_changes(self, changes: list[bytes]) -> bool:
        """Apply raw changes (from `get_changes_since` on a doc sharing this history);
        True if the doc changed. Changes it has already are ignored; bytes that are not
        changes raise SyncMessageError and leave the doc untouched."""
        return self.receive_sync_message(SyncState(), changes_message(changes))

    def has_change(self, change_hash: bytes) -> bool:
        """Whether a change with this hash is in the doc's history."""
        return (
            bool(self._doc.get_heads())
            and len(self._doc.get_changes([change_hash])) < self.change_count()
        )

    def history_size(self, since: list[bytes]) -> int:
        """Uncompressed bytes of the changes that are not ancestors of `since` (all of
        them for []): what that history holds in memory, about 2.4x this in the daemon."""
        return sum(len(change.raw_bytes) for change in self._doc.get_changes(list(since)))

    def change_count(self) -> int:
        """How many changes the history holds (walks the whole history)."""
        return len(self._doc.get_changes([]))

    # ---------------------------------------------------------------------- cells

    def add_cell(
        self,
        cell_type: str = "code",
        source: str = "",
        *,
        cell_id: str | None = None,
        index: int | None = None,
        after: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> str:
        """Insert a cell at `index`, after cell `after`, or at the end; returns its id."""
        new = NewCell(cell_type, source, cell_id, {} if metadata is None else metadata)
        return self._insert_cells([new], index, after)[0]

    def add_cells(self, cells: Iterable[NewCell], *, index: int | None = None) -> list[str]:
        """Insert many cells (an import) in ONE transaction, in order; returns their ids."""
        return self._insert_cells(list(cells), index, None)

    def _insert_cells(self, new: list[NewCell], index: int | None, after: str | None) -> list[str]:
        ids = [_check_new_cell(cell) for cell in new]
        if len(set(ids)) != len(ids):
            raise InvalidArgument("the new cells repeat a cell id")
        with transaction(self._doc) as tx:
            cells = _cells(tx)
            for cell_id in ids:
                if get(tx, cells, cell_id) is not None:
                    raise InvalidArgument(f"a cell with id {cell_id!r} already exists")
            order = _order(tx, cells)
            positions = _positions_at(tx, cells, order, _slot(order, index, after), len(new))
            for cell, cell_id, position in zip(new, ids, positions, strict=True):
                create_cell(
                    tx,
                    cells,
                    cell_id=cell_id,
                    cell_type=cell.cell_type,
                    position=position,
                    source=cell.source,
                    metadata=cell.metadata,
                    execution_count=cell.execution_count,
                    outputs=cell.outputs,
                )
        return ids

    def restore_cell(self, cell: CellSnapshot) -> None:
        """Add a cell exactly as `cell` describes it, position included (compaction)."""
        new = NewCell(cell.cell_type, cell.source, cell.id, cell.metadata, cell.execution_count)
        _check_new_cell(dataclasses.replace(new, outputs=list(cell.outputs)))
        if not is_readable_position(cell.position):
            raise InvalidArgument(f"position {cell.position!r} is not a lowercase hex position")
        with transaction(self._doc) as tx:
            cells = _cells(tx)
            if get(tx, cells, cell.id) is not None:
                raise InvalidArgument(f"a cell with id {cell.id!r} already exists")
            restore_cell(tx, cells, cell)

    def set_position(self, cell_id: str, position: str) -> bool:
        """Put a cell at a given fractional position (compaction carries moves so)."""
        if not is_readable_position(position):
            raise InvalidArgument(f"position {position!r} is not a lowercase hex position")
        return self._put_cell_str(cell_id, "position", position)

    def set_cell_type(self, cell_id: str, cell_type: str) -> bool:
        return self._put_cell_str(cell_id, "cell_type", check_cell_type(cell_type))

    def _put_cell_str(self, cell_id: str, key: str, value: str) -> bool:
        with transaction(self._doc) as tx:
            cell = _cell(tx, _cells(tx), cell_id)
            if get_scalar(tx, cell, key) == (ScalarType.Str, value):
                return False
            tx.put(cell, key, ScalarType.Str, value)
            return True

    def delete_cell(self, cell_id: str) -> None:
        """Remove a cell; CellNotFound if there is none."""
        with transaction(self._doc) as tx:
            cells = _cells(tx)
            _cell(tx, cells, cell_id)
            tx.delete(cells, cell_id)

    def move_cell(
        self, cell_id: str, *, index: int | None = None, after: str | None = None
    ) -> None:
        """Move a cell to `index` (in the order without it) or right after cell `after`."""
        if (index is None) == (after is None):
            raise InvalidArgument("move_cell needs exactly one of index= or after=")
        if after == cell_id:
            raise InvalidArgument("a cell cannot move after itself")
        with transaction(self._doc) as tx:
            cells = _cells(tx)
            cell = _cell(tx, cells, cell_id)
            order = _order(tx, cells)
            current = [key for _, key in order].index(cell_id)
            rest = order[:current] + order[current + 1 :]
            slot = _slot(rest, index, after)
            if slot != current:
                position = _positions_at(tx, cells, rest, slot, 1)[0]
                tx.put(cell, "position", ScalarType.Str, position)

    def get_cells(self) -> list[CellSnapshot]:
        """Every cell in notebook order: by (position, id)."""
        cells = self._container(CELLS)
        if cells is None:
            return []
        snapshots = [read_cell(self._doc, cells, key) for key in self._doc.keys(cells)]
        return sorted(snapshots, key=lambda cell: (cell.position, cell.id))

    def get_cell(self, cell_id: str) -> CellSnapshot | None:
        return self._read_item(CELLS, "cell_id", cell_id, read_cell)

    def cell_ids(self) -> list[str]:
        """Cell ids in notebook order (cheaper than `get_cells`)."""
        cells = self._container(CELLS)
        return [] if cells is None else [key for _, key in _order(self._doc, cells)]

    def set_source(self, cell_id: str, source: str) -> bool:
        """Replace the source by a minimal character diff, so concurrent edits both survive."""
        _check_str("source", source)
        with transaction(self._doc) as tx:
            text = _source(tx, cell_id)
            return replace_text(tx, text, tx.text(text), source)

    def append_source(self, cell_id: str, text: str) -> None:
        _check_str("text", text)
        with transaction(self._doc) as tx:
            source = _source(tx, cell_id)
            insert_text(tx, source, tx.length(source), text)

    def set_execution_count(self, cell_id: str, count: int | None) -> bool:
        stored = format_execution_count(count)
        with transaction(self._doc) as tx:
            cell = _cell(tx, _cells(tx), cell_id)
            if get_scalar(tx, cell, "execution_count") == (ScalarType.Str, stored):
                return False
            tx.put(cell, "execution_count", ScalarType.Str, stored)
            return True

    def set_execution_status(self, cell_id: str, status: str | None) -> bool:
        """Record how the cell's run stands (queued, running, ok, error, aborted); None
        removes the field. False when unchanged."""
        if status is not None and status not in EXECUTION_STATUSES:
            raise InvalidArgument(
                f"execution_status {status!r} is not one of {sorted(EXECUTION_STATUSES)}"
            )
        with transaction(self._doc) as tx:
            cell = _cell(tx, _cells(tx), cell_id)
            stored = get_scalar(tx, cell, "execution_status")
            if status is None:
                if stored is None:
                    return False
                tx.delete(cell, "execution_status")
                return True
            if stored == (ScalarType.Str, status):
                return False
            tx.put(cell, "execution_status", ScalarType.Str, status)
            return True

    def get_outputs(self, cell_id: str) -> list[str]:
        cell = _cell(self._doc, _cells(self._doc), cell_id)
        return read_str_list(self._doc, cell, "outputs", f"cells[{cell_id!r}]")

    def set_outputs(self, cell_id: str, outputs: list[str]) -> bool:
        """Make the outputs equal `outputs`, rewriting only the slots that differ."""
        new = [check_output(output) for output in _check_list("outputs", outputs)]
        with transaction(self._doc) as tx:
            outputs_obj, old = _outputs(tx, cell_id)
            return update_str_list(tx, outputs_obj, old, new)

    def append_output(self, cell_id: str, output: str) -> None:
        check_output(output)
        with transaction(self._doc) as tx:
            outputs = _output_list(tx, cell_id)
            tx.insert(outputs, tx.length(outputs), ScalarType.Str, output)

    def replace_output(self, cell_id: str, index: int, output: str) -> bool:
        """Overwrite output `index` (e.g. update_display_data); False when unchanged."""
        check_output(output)
        with transaction(self._doc) as tx:
            outputs_obj, old = _outputs(tx, cell_id)
            if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(old):
                raise InvalidArgument(f"cell {cell_id!r} has no output {index!r}")
            if old[index] == output:
                return False
            tx.put(outputs_obj, index, ScalarType.Str, output)
            return True

    def clear_outputs(self, cell_id: str) -> bool:
        with transaction(self._doc) as tx:
            outputs_obj, old = _outputs(tx, cell_id)
            return update_str_list(tx, outputs_obj, old, [])

    def set_cell_metadata(self, cell_id: str, metadata: dict[str, Any]) -> bool:
        """Replace a cell's metadata, writing only the keys that differ."""
        _check_dict("metadata", metadata)
        with transaction(self._doc) as tx:
            cell = _cell(tx, _cells(tx), cell_id)
            where = f"cells[{cell_id!r}].metadata"
            target = require_obj(tx, cell, "metadata", ObjType.Map, where)
            return update_json_map(tx, target, metadata, where=where)

    # ------------------------------------------------------------------- metadata

    def get_metadata(self) -> dict[str, Any]:
        metadata = self._container(METADATA)
        if metadata is None:
            return {}
        return read_json(self._doc, (ObjType.Map, metadata), "root.metadata")

    def set_metadata(self, metadata: dict[str, Any]) -> bool:
        """Replace the notebook metadata, writing only the keys that differ."""
        _check_dict("metadata", metadata)
        with transaction(self._doc) as tx:
            target = require_obj(tx, ROOT, METADATA, ObjType.Map, "root.metadata")
            return update_json_map(tx, target, metadata, where="metadata")

    def update_metadata(self, key: str, value: Any) -> bool:
        """Set one top-level metadata key (e.g. "kernelspec")."""
        _check_id("metadata key", key)
        with transaction(self._doc) as tx:
            target = require_obj(tx, ROOT, METADATA, ObjType.Map, "root.metadata")
            return set_json_key(tx, target, key, value, where=f"metadata.{key}")

    # ---------------------------------------------------------------------- comms

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

    def get_comm_state_json(self, comm_id: str) -> str | None:
        """The raw stored state string (no parsing), or None when there is no such comm."""
        _check_id("comm_id", comm_id)
        comms = self._container(COMMS)
        comm = None if comms is None else get_obj(self._doc, comms, comm_id, ObjType.Map)
        if comm is None:
            return None
        return read_str(self._doc, comm, "state", f"comms[{comm_id!r}]")

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

    def _is_blank(self) -> bool:
        """Nothing synced in yet (an `empty` doc): readers see an empty notebook."""
        return not self._doc.keys(ROOT)

    def _read_item(
        self, container: str, name: str, key: str, read: Callable[[Reader, ObjId, str], T]
    ) -> T | None:
        """One cell or comm by id, read with `read`; None when there is none."""
        _check_id(name, key)
        items = self._container(container)
        if items is None or get(self._doc, items, key) is None:
            return None
        return read(self._doc, items, key)

    def _container(self, key: str) -> ObjId | None:
        """A root map for readers; None on a blank doc, SchemaError when broken."""
        if self._is_blank():
            return None
        return require_obj(self._doc, ROOT, key, ObjType.Map, f"root.{key}")

    def _comm_write(self, write: CommWrite) -> bool:
        with transaction(self._doc) as tx:
            return apply_comm_write(tx, _comms(tx), write)

    # ------------------------------------------------------------- whole document

    def validate(self) -> list[str]:
        """Every schema problem, in words; empty when the doc is a sound v3 notebook.

        The daemon runs this after applying a peer's changes, to reject or repair them.
        """
        reader = self._doc
        problems: list[str] = []

        def check(what: Callable[[], object]) -> None:
            try:
                what()
            except NotebookDocError as exc:
                problems.append(str(exc))

        def check_version() -> None:
            version = read_schema_version(reader)
            if version != SCHEMA_VERSION:
                raise SchemaError(f"root.schema_version is {version}, not {SCHEMA_VERSION}")

        def check_notebook_id() -> None:
            notebook_id = read_str(reader, ROOT, NOTEBOOK_ID, "root")
            if self._notebook_id is None:
                self._notebook_id = notebook_id
            elif notebook_id != self._notebook_id:
                raise SchemaError(f"root.notebook_id is {notebook_id!r}, not {self._notebook_id!r}")

        check(check_version)
        check(check_notebook_id)
        check(self.get_metadata)
        for key, read_item in ((CELLS, read_cell), (COMMS, read_comm)):
            try:
                container = require_obj(reader, ROOT, key, ObjType.Map, f"root.{key}")
            except SchemaError as exc:
                problems.append(str(exc))
                continue
            for item_key in reader.keys(container):
                check(lambda c=container, k=item_key, r=read_item: r(reader, c, k))
        return problems

    def repair(self, *, restore_from: list[bytes] | None = None) -> list[str]:
        """Put a doc a peer broke back into v3 shape (one change); returns what was fixed.

        Broken comms are removed (rewrite them from CommState); broken cell fields get
        neutral values; non-JSON metadata values are dropped. `restore_from` are heads
        of a sound earlier state (before the peer's change): a `cells` or `metadata`
        map the peer deleted or replaced is rebuilt from it rather than left empty.
        """
        previous = None if restore_from is None else self._doc.fork(restore_from)
        return repair(self._doc, self._notebook_id, previous)

    def to_json(self) -> dict[str, Any]:
        """A plain JSON view (for `cat --json` and for comparing docs in tests).

        A blank (`empty`, not yet synced) doc has None for its id and version.
        """
        blank = self._is_blank()
        return {
            "notebook_id": None if blank else self.notebook_id,
            "schema_version": None if blank else self.schema_version,
            "metadata": self.get_metadata(),
            "cells": [dataclasses.asdict(cell) for cell in self.get_cells()],
            "comms": [dataclasses.asdict(comm) for comm in self.get_comms()],
        }

    def __repr__(self) -> str:
        return f"<NotebookDoc heads={[head.hex()[:8] for head in self.get_heads()]}>"


# ----------------------------------------------------------------- module helpers


def _set_actor(doc: Document, actor_id: bytes | None) -> None:
    if actor_id is None:
        return
    if not isinstance(actor_id, bytes) or not actor_id:
        raise InvalidArgument(f"actor_id must be non-empty bytes, not {actor_id!r}")
    doc.set_actor(actor_id)


def _core_state(state: SyncState) -> Any:
    if not isinstance(state, SyncState):
        raise InvalidArgument(f"expected a notebook_doc.SyncState, not {type(state).__name__}")
    return state._state


def _check_new_cell(cell: NewCell) -> str:
    """Check a cell to add before anything is written; returns its (possibly fresh) id."""
    if not isinstance(cell, NewCell):
        raise InvalidArgument(f"expected a NewCell, not {type(cell).__name__}")
    check_cell_type(cell.cell_type)
    _check_str("source", cell.source)
    _check_dict("metadata", cell.metadata)
    format_execution_count(cell.execution_count)
    for output in _check_list("outputs", cell.outputs):
        check_output(output)
    return new_cell_id() if cell.cell_id is None else _check_id("cell_id", cell.cell_id)


def _check_str(name: str, value: object) -> str:
    return check_text(value, name)


def _check_id(name: str, value: object) -> str:
    if not _check_str(name, value):
        raise InvalidArgument(f"{name} must not be empty")
    return str(value)


def _check_dict(name: str, value: T) -> T:
    if not isinstance(value, dict):
        raise InvalidArgument(f"{name} must be a dict, not {type(value).__name__}")
    return value


def _check_list(name: str, value: T) -> T:
    if not isinstance(value, list):
        raise InvalidArgument(f"{name} must be a list, not {type(value).__name__}")
    return value


def _cells(reader: Reader) -> ObjId:
    return require_obj(reader, ROOT, CELLS, ObjType.Map, "root.cells")


def _comms(reader: Reader) -> ObjId:
    return require_obj(reader, ROOT, COMMS, ObjType.Map, "root.comms")


def _cell(reader: Reader, cells: ObjId, cell_id: str) -> ObjId:
    _check_str("cell_id", cell_id)
    stored = get(reader, cells, cell_id, f"cells[{cell_id!r}]")
    if stored is None:
        raise CellNotFound(cell_id)
    if stored[0] != ObjType.Map:
        raise SchemaError(f"cells[{cell_id!r}] is not a Map")
    return stored[1]


def _source(reader: Reader, cell_id: str) -> ObjId:
    cell = _cell(reader, _cells(reader), cell_id)
    return require_obj(reader, cell, "source", ObjType.Text, f"cells[{cell_id!r}].source")


def _outputs(reader: Reader, cell_id: str) -> tuple[ObjId, list[str]]:
    """The outputs List of a cell and its items."""
    cell = _cell(reader, _cells(reader), cell_id)
    where = f"cells[{cell_id!r}]"
    outputs = require_obj(reader, cell, "outputs", ObjType.List, f"{where}.outputs")
    return outputs, read_str_list(reader, cell, "outputs", where)


def _output_list(reader: Reader, cell_id: str) -> ObjId:
    """Just the outputs List (appending need not read every output)."""
    cell = _cell(reader, _cells(reader), cell_id)
    return require_obj(reader, cell, "outputs", ObjType.List, f"cells[{cell_id!r}].outputs")


def _comm(reader: Reader, comm_id: str) -> ObjId | None:
    _check_str("comm_id", comm_id)
    return get_obj(reader, _comms(reader), comm_id, ObjType.Map)


def _order(reader: Reader, cells: ObjId) -> list[tuple[str, str]]:
    """(position, id) of every cell, sorted: the notebook order."""
    return sorted(
        (read_str(reader, _cell(reader, cells, key), "position", f"cells[{key!r}]"), key)
        for key in reader.keys(cells)
    )


def _slot(order: list[tuple[str, str]], index: int | None, after: str | None) -> int:
    """Where in `order` a cell goes: at `index`, after cell `after`, or at the end."""
    if index is not None and after is not None:
        raise InvalidArgument("give index= or after=, not both")
    if after is not None:
        ids = [key for _, key in order]
        if after not in ids:
            raise CellNotFound(after)
        return ids.index(after) + 1
    if index is None:
        return len(order)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= len(order):
        raise InvalidArgument(f"index {index!r} is outside 0..{len(order)}")
    return index


def _positions_at(
    tx: Transaction, cells: ObjId, order: list[tuple[str, str]], slot: int, count: int
) -> list[str]:
    """Positions for `count` cells placed together at `slot` of `order`.

    When the neighbours leave no room (equal positions from concurrent inserts, or
    foreign keys such as "8" and "80"), those neighbours get new keys in this same
    transaction; a position that is not hex at all renumbers every cell.
    """
    positions = [position for position, _ in order]
    if not all(is_readable_position(position) for position in positions):
        start, stop, keys = 0, len(order), keys_between(None, None, len(order) + count)
    else:
        before = positions[slot - 1] if slot > 0 else None
        after = positions[slot] if slot < len(order) else None
        try:
            return keys_between(before, after, count)
        except NoRoom:
            start, stop, keys = rekey_span(positions, slot, count)
    moved = keys[: slot - start] + keys[slot - start + count :]
    for (old, key), new in zip(order[start:stop], moved, strict=True):
        if old != new:
            tx.put(_cell(tx, cells, key), "position", ScalarType.Str, new)
    log.info("re-keyed cell positions", cells=stop - start, slot=slot)
    return keys[slot - start : slot - start + count]
