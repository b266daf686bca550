"""Put a document a peer broke back into schema v3 shape, in one transaction.

The daemon calls this when `validate()` reports problems after a client's sync
message. Broken comms are removed (the daemon rewrites them from its CommState);
broken cell fields get neutral values, so a cell is only dropped when it is not a
map at all; non-JSON metadata values are removed. A root `cells` or `metadata` map
that a peer deleted or replaced is rebuilt from `previous` (the doc as it was before
that peer's change), so one bad client cannot wipe the notebook for everyone.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from ._automerge import (
    ROOT,
    Document,
    ObjId,
    ObjType,
    ScalarType,
    Transaction,
    get_obj,
    get_scalar,
    insert_text,
    put_json,
    read_json,
    read_value,
    transaction,
)
from .cells import read_cell, restore_cell
from .comms import read_comm
from .errors import NotebookDocError, SchemaError
from .positions import is_readable_position, key_between
from .schema import (
    CELL_TYPES,
    CELLS,
    COMMS,
    METADATA,
    NOTEBOOK_ID,
    SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
    read_schema_version,
    read_str_list,
)

__all__ = ["repair"]

log = structlog.get_logger(__name__)


def repair(doc: Document, notebook_id: str | None, previous: Document | None = None) -> list[str]:
    """Fix what can be fixed; returns what was done, in words (empty: nothing to do).

    `previous` is the same doc at an earlier, sound state: a lost `cells` or
    `metadata` map is rebuilt from it instead of starting empty.
    """
    fixes: list[str] = []
    with transaction(doc) as tx:
        _repair_version(tx, fixes)
        stored_id = get_scalar(tx, ROOT, NOTEBOOK_ID)
        if notebook_id is not None and stored_id != (ScalarType.Str, notebook_id):
            tx.put(ROOT, NOTEBOOK_ID, ScalarType.Str, notebook_id)
            fixes.append(f"restored root.notebook_id {notebook_id!r}")
        (cells, cells_lost), (metadata, metadata_lost), (comms, _) = (
            _ensure_map(tx, key, fixes) for key in (CELLS, METADATA, COMMS)
        )
        if previous is not None and cells_lost:
            _restore_cells(tx, cells, previous, fixes)
        if previous is not None and metadata_lost:
            _restore_metadata(tx, metadata, previous, fixes)
        _drop_non_json(tx, metadata, "metadata", fixes)
        for comm_id in tx.keys(comms):
            try:
                read_comm(tx, comms, comm_id)
            except SchemaError as exc:
                tx.delete(comms, comm_id)
                fixes.append(f"removed comm {comm_id!r}: {exc}")
        _repair_cells(tx, cells, fixes)
    if fixes:
        log.warning("repaired notebook doc", fixes=fixes)
    return fixes


def _repair_version(tx: Transaction, fixes: list[str]) -> None:
    try:
        version: object = read_schema_version(tx)
    except NotebookDocError as exc:
        version = str(exc)
    if version != SCHEMA_VERSION:
        tx.put(ROOT, SCHEMA_VERSION_KEY, ScalarType.Uint, SCHEMA_VERSION)
        fixes.append(f"reset schema_version ({version}) to {SCHEMA_VERSION}")


def _ensure_map(tx: Transaction, key: str, fixes: list[str]) -> tuple[ObjId, bool]:
    """The root map at `key`, and whether it had to be made afresh (its content lost)."""
    existing = get_obj(tx, ROOT, key, ObjType.Map)
    if existing is not None:
        return existing, False
    fixes.append(f"replaced root.{key} with an empty map")
    return tx.put_object(ROOT, key, ObjType.Map), True


def _restore_cells(tx: Transaction, cells: ObjId, previous: Document, fixes: list[str]) -> None:
    """Refill a recreated `cells` map with every sound cell the earlier doc had."""
    old_cells = get_obj(previous, ROOT, CELLS, ObjType.Map)
    for cell_id in [] if old_cells is None else previous.keys(old_cells):
        try:
            cell = read_cell(previous, old_cells, cell_id)
        except SchemaError:
            continue
        restore_cell(tx, cells, cell)
        fixes.append(f"restored cells[{cell_id!r}]")


def _restore_metadata(
    tx: Transaction, metadata: ObjId, previous: Document, fixes: list[str]
) -> None:
    """Refill a recreated `metadata` map with the earlier doc's JSON values."""
    old_metadata = get_obj(previous, ROOT, METADATA, ObjType.Map)
    for key in [] if old_metadata is None else previous.keys(old_metadata):
        try:
            value = read_value(previous, old_metadata, key, f"metadata.{key}")
        except SchemaError:
            continue
        put_json(tx, metadata, key, value, where=f"metadata.{key}")
        fixes.append(f"restored metadata.{key}")


def _drop_non_json(tx: Transaction, obj: ObjId, where: str, fixes: list[str]) -> None:
    for key in tx.keys(obj):
        try:
            read_value(tx, obj, key, f"{where}.{key}")
        except SchemaError as exc:
            tx.delete(obj, key)
            fixes.append(f"removed {where}.{key}: {exc}")


def _repair_cells(tx: Transaction, cells: ObjId, fixes: list[str]) -> None:
    broken: list[tuple[str, ObjId]] = []
    last_position: str | None = None
    for cell_id in tx.keys(cells):
        cell = get_obj(tx, cells, cell_id, ObjType.Map)
        if cell is None:
            tx.delete(cells, cell_id)
            fixes.append(f"removed cells[{cell_id!r}]: not a map")
            continue
        if _sound_position(tx, cell, cell_id):
            position = _str_field(tx, cell, "position") or ""
            last_position = max(last_position or position, position)
        try:
            read_cell(tx, cells, cell_id)
        except SchemaError:
            broken.append((cell_id, cell))
    for cell_id, cell in broken:
        where = f"cells[{cell_id!r}]"
        for field, is_sound, fix in _CELL_FIELDS:
            if not is_sound(tx, cell, cell_id):
                fix(tx, cell, cell_id)
                fixes.append(f"reset {where}.{field}")
        if not _sound_position(tx, cell, cell_id):
            last_position = key_between(last_position, None)
            tx.put(cell, "position", ScalarType.Str, last_position)
            fixes.append(f"moved {where} to the end (bad position)")


def _str_field(tx: Transaction, cell: ObjId, key: str) -> str | None:
    stored = get_scalar(tx, cell, key)
    return stored[1] if stored is not None and stored[0] == ScalarType.Str else None


def _sound_position(tx: Transaction, cell: ObjId, _: str) -> bool:
    position = _str_field(tx, cell, "position")
    return position is not None and is_readable_position(position)


def _sound_execution_count(tx: Transaction, cell: ObjId, _: str) -> bool:
    count = _str_field(tx, cell, "execution_count")
    return count is not None and (count == "null" or (count.isascii() and count.isdigit()))


def _sound_outputs(tx: Transaction, cell: ObjId, _: str) -> bool:
    try:
        read_str_list(tx, cell, "outputs", "")
    except SchemaError:
        return False
    return True


def _sound_metadata(tx: Transaction, cell: ObjId, _: str) -> bool:
    metadata = get_obj(tx, cell, "metadata", ObjType.Map)
    if metadata is None:
        return False
    try:
        read_json(tx, (ObjType.Map, metadata), "")
    except SchemaError:
        return False
    return True


def _fix_source(tx: Transaction, cell: ObjId, _: str) -> None:
    text = _str_field(tx, cell, "source") or ""  # keep a Str source's content
    insert_text(tx, tx.put_object(cell, "source", ObjType.Text), 0, text)


def _fix_outputs(tx: Transaction, cell: ObjId, _: str) -> None:
    outputs = get_obj(tx, cell, "outputs", ObjType.List)
    if outputs is None:
        tx.put_object(cell, "outputs", ObjType.List)
        return
    for index in range(tx.length(outputs) - 1, -1, -1):
        kind = get_scalar(tx, outputs, index)
        if kind is None or kind[0] != ScalarType.Str:
            tx.delete(outputs, index)


def _fix_metadata(tx: Transaction, cell: ObjId, cell_id: str) -> None:
    metadata = get_obj(tx, cell, "metadata", ObjType.Map)
    if metadata is None:
        tx.put_object(cell, "metadata", ObjType.Map)
    else:
        _drop_non_json(tx, metadata, f"cells[{cell_id!r}].metadata", [])


_Check = Callable[[Transaction, ObjId, str], bool]
_Fix = Callable[[Transaction, ObjId, str], None]

# (field, is it sound?, make it sound) for every cell field except position.
_CELL_FIELDS: list[tuple[str, _Check, _Fix]] = [
    (
        "id",
        lambda tx, cell, cell_id: _str_field(tx, cell, "id") == cell_id,
        lambda tx, cell, cell_id: tx.put(cell, "id", ScalarType.Str, cell_id),
    ),
    (
        "cell_type",
        lambda tx, cell, _: _str_field(tx, cell, "cell_type") in CELL_TYPES,
        lambda tx, cell, _: tx.put(cell, "cell_type", ScalarType.Str, "code"),
    ),
    (
        "source",
        lambda tx, cell, _: get_obj(tx, cell, "source", ObjType.Text) is not None,
        _fix_source,
    ),
    (
        "execution_count",
        _sound_execution_count,
        lambda tx, cell, _: tx.put(cell, "execution_count", ScalarType.Str, "null"),
    ),
    ("outputs", _sound_outputs, _fix_outputs),
    ("metadata", _sound_metadata, _fix_metadata),
]
