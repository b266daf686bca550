"""Cells: the snapshot type, strict reading, and the writes one cell needs."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from ._automerge import (
    ObjId,
    ObjType,
    Reader,
    ScalarType,
    Transaction,
    check_text,
    get_scalar,
    insert_text,
    read_json,
    update_json_map,
)
from .errors import InvalidArgument, SchemaError
from .positions import is_readable_position
from .schema import BLOB_HASH, CELL_TYPES, read_str, read_str_list, require_obj

__all__ = [
    "EXECUTION_STATUSES",
    "CellSnapshot",
    "NewCell",
    "check_cell_type",
    "check_output",
    "create_cell",
    "format_execution_count",
    "new_cell_id",
    "read_cell",
    "restore_cell",
    "unique_ids",
]


@dataclass(frozen=True, slots=True)
class CellSnapshot:
    """One cell as plain Python values, detached from the document."""

    id: str
    cell_type: str
    position: str
    source: str
    execution_count: int | None
    outputs: list[str]
    metadata: dict[str, Any]
    # Optional (absent in docs written before it, and never in an .ipynb): how the
    # cell's last run stands, one of EXECUTION_STATUSES; None when unknown.
    execution_status: str | None = None


EXECUTION_STATUSES = frozenset({"queued", "running", "ok", "error", "aborted"})


@dataclass(frozen=True, slots=True)
class NewCell:
    """A cell to add in bulk (`NotebookDoc.add_cells`); cell_id None means a fresh one."""

    cell_type: str = "code"
    source: str = ""
    cell_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    execution_count: int | None = None
    outputs: list[str] = field(default_factory=list)


def new_cell_id() -> str:
    """A fresh id: 32 hex digits, unique across peers and valid as an nbformat 4.5 id."""
    return uuid.uuid4().hex


def unique_ids(candidates: list[object]) -> list[str]:
    """Keep each usable id once; give a fresh id to missing, empty or repeated ones."""
    seen: set[str] = set()
    ids: list[str] = []
    for candidate in candidates:
        cell_id = candidate if isinstance(candidate, str) and candidate else new_cell_id()
        while cell_id in seen:
            cell_id = new_cell_id()
        seen.add(cell_id)
        ids.append(cell_id)
    return ids


def check_cell_type(cell_type: object) -> str:
    if cell_type not in CELL_TYPES:
        raise InvalidArgument(f"cell_type {cell_type!r} is not one of {sorted(CELL_TYPES)}")
    return str(cell_type)


def check_output(output: object) -> str:
    """An output is a 64-hex blob hash or one nbformat output as a JSON object string."""
    check_text(output, "an output")
    if BLOB_HASH.fullmatch(output):
        return output
    try:
        parsed = json.loads(output)
    except ValueError as exc:
        raise InvalidArgument(f"output is neither a blob hash nor JSON: {exc}") from exc
    if not isinstance(parsed, dict) or not isinstance(parsed.get("output_type"), str):
        raise InvalidArgument("output JSON must be an object with an 'output_type' string")
    return output


def format_execution_count(count: int | None) -> str:
    """The Str the schema stores: "null" or the decimal number."""
    if count is None:
        return "null"
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        raise InvalidArgument(f"execution_count must be None or an int >= 0, not {count!r}")
    return str(count)


def _parse_execution_count(text: str, where: str) -> int | None:
    if text == "null":
        return None
    if not text.isascii() or not text.isdigit():
        raise SchemaError(f"{where}.execution_count is {text!r}, not 'null' or a number")
    return int(text)


def create_cell(
    tx: Transaction,
    cells: ObjId,
    *,
    cell_id: str,
    cell_type: str,
    position: str,
    source: str,
    metadata: dict[str, Any],
    execution_count: int | None = None,
    outputs: list[str] | None = None,
) -> None:
    """Write a complete cell map under `cells[cell_id]` (every field, whatever the type)."""
    where = f"cells[{cell_id!r}]"
    cell = tx.put_object(cells, cell_id, ObjType.Map)
    tx.put(cell, "id", ScalarType.Str, cell_id)
    tx.put(cell, "cell_type", ScalarType.Str, cell_type)
    tx.put(cell, "position", ScalarType.Str, position)
    insert_text(tx, tx.put_object(cell, "source", ObjType.Text), 0, source)
    tx.put(cell, "execution_count", ScalarType.Str, format_execution_count(execution_count))
    output_list = tx.put_object(cell, "outputs", ObjType.List)
    for index, output in enumerate(outputs or []):
        tx.insert(output_list, index, ScalarType.Str, check_output(output))
    update_json_map(tx, tx.put_object(cell, "metadata", ObjType.Map), metadata, where=where)


def restore_cell(tx: Transaction, cells: ObjId, cell: CellSnapshot) -> None:
    """Write a cell exactly as a snapshot of it says (repair, compaction)."""
    create_cell(
        tx,
        cells,
        cell_id=cell.id,
        cell_type=cell.cell_type,
        position=cell.position,
        source=cell.source,
        metadata=cell.metadata,
        execution_count=cell.execution_count,
        outputs=list(cell.outputs),
    )


def read_cell(reader: Reader, cells: ObjId, cell_id: str) -> CellSnapshot:
    """Read and check one cell; SchemaError names the first broken field."""
    where = f"cells[{cell_id!r}]"
    cell = require_obj(reader, cells, cell_id, ObjType.Map, where)
    stored_id = read_str(reader, cell, "id", where)
    if stored_id != cell_id:
        raise SchemaError(f"{where}.id is {stored_id!r}, not its key")
    cell_type = read_str(reader, cell, "cell_type", where)
    if cell_type not in CELL_TYPES:
        raise SchemaError(f"{where}.cell_type {cell_type!r} is not one of {sorted(CELL_TYPES)}")
    position = read_str(reader, cell, "position", where)
    if not is_readable_position(position):
        raise SchemaError(f"{where}.position {position!r} is not a lowercase hex position")
    source = reader.text(require_obj(reader, cell, "source", ObjType.Text, f"{where}.source"))
    execution_count = _parse_execution_count(
        read_str(reader, cell, "execution_count", where), where
    )
    metadata_obj = require_obj(reader, cell, "metadata", ObjType.Map, f"{where}.metadata")
    return CellSnapshot(
        id=cell_id,
        cell_type=cell_type,
        position=position,
        source=source,
        execution_count=execution_count,
        outputs=read_str_list(reader, cell, "outputs", where),
        metadata=read_json(reader, (ObjType.Map, metadata_obj), f"{where}.metadata"),
        execution_status=_read_execution_status(reader, cell),
    )


def _read_execution_status(reader: Reader, cell: ObjId) -> str | None:
    """Lenient: the field is optional, and a value this version does not know (or of the
    wrong type) reads as unknown rather than breaking the cell."""
    stored = get_scalar(reader, cell, "execution_status")
    if stored is None or stored[0] != ScalarType.Str or stored[1] not in EXECUTION_STATUSES:
        return None
    return str(stored[1])
