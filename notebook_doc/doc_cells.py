"""`DocCells`: NotebookDoc's cell reads and writes, and where a new or moved cell goes.

Cells live in a map keyed by id; the notebook order is their fractional `position`
(ties broken by id), so a move rewrites one string and concurrent inserts both keep
their place.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

import structlog

from ._automerge import (
    ROOT,
    ObjId,
    ObjType,
    Reader,
    ScalarType,
    Transaction,
    check_text,
    get,
    get_scalar,
    insert_text,
    replace_text,
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
from .doc_base import DocBase, check_dict, check_id, check_list
from .errors import CellNotFound, InvalidArgument, SchemaError
from .positions import NoRoom, is_readable_position, keys_between, rekey_span
from .schema import CELLS, read_str, read_str_list, require_obj

log = structlog.get_logger(__name__)


class DocCells(DocBase):
    """The cells part of NotebookDoc."""

    __slots__ = ()

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
        check_text(source, "source")
        with transaction(self._doc) as tx:
            text = _source(tx, cell_id)
            return replace_text(tx, text, tx.text(text), source)

    def append_source(self, cell_id: str, text: str) -> None:
        check_text(text, "text")
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
        new = [check_output(output) for output in check_list("outputs", outputs)]
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
        check_dict("metadata", metadata)
        with transaction(self._doc) as tx:
            cell = _cell(tx, _cells(tx), cell_id)
            where = f"cells[{cell_id!r}].metadata"
            target = require_obj(tx, cell, "metadata", ObjType.Map, where)
            return update_json_map(tx, target, metadata, where=where)


def _check_new_cell(cell: NewCell) -> str:
    """Check a cell to add before anything is written; returns its (possibly fresh) id."""
    if not isinstance(cell, NewCell):
        raise InvalidArgument(f"expected a NewCell, not {type(cell).__name__}")
    check_cell_type(cell.cell_type)
    check_text(cell.source, "source")
    check_dict("metadata", cell.metadata)
    format_execution_count(cell.execution_count)
    for output in check_list("outputs", cell.outputs):
        check_output(output)
    return new_cell_id() if cell.cell_id is None else check_id("cell_id", cell.cell_id)


def _cells(reader: Reader) -> ObjId:
    return require_obj(reader, ROOT, CELLS, ObjType.Map, "root.cells")


def _cell(reader: Reader, cells: ObjId, cell_id: str) -> ObjId:
    check_text(cell_id, "cell_id")
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
