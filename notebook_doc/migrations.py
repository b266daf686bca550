"""Schema migrations, each idempotent and one transaction (see docs/schema.md).

v1 kept `cells` as an ordered List of cell maps and could keep metadata as JSON
strings; v2 keyed cells by id with a fractional `position` and native metadata; v3
added `comms`. Automerge cannot move an object, so v1 -> v2 copies every cell into a
fresh map (a source Text is re-inserted character by character, once).
"""

from __future__ import annotations

import json
from typing import Any

import structlog

from ._automerge import (
    ROOT,
    Document,
    ObjId,
    ObjType,
    Reader,
    ScalarType,
    Transaction,
    get,
    get_obj,
    read_json,
    transaction,
    update_json_map,
)
from .cells import check_output, create_cell, unique_ids
from .errors import InvalidArgument, SchemaError
from .positions import keys_between
from .schema import (
    CELL_TYPES,
    CELLS,
    COMMS,
    METADATA,
    SCHEMA_VERSION,
    SCHEMA_VERSION_KEY,
    read_schema_version,
    require_obj,
)

__all__ = ["migrate", "migrate_v1_to_v2", "migrate_v2_to_v3"]

log = structlog.get_logger(__name__)


def migrate_v1_to_v2(doc: Document) -> bool:
    """Rebuild the v1 `cells` List as a Map with positions in list order; False if not v1."""
    if read_schema_version(doc) != 1:
        return False
    cells_list = require_obj(doc, ROOT, CELLS, ObjType.List, "root.cells (v1)")
    cells = [_read_v1_cell(doc, cells_list, index) for index in range(doc.length(cells_list))]
    # v1 allowed missing or repeated ids.
    for cell, cell_id in zip(cells, unique_ids([c["cell_id"] for c in cells]), strict=True):
        cell["cell_id"] = cell_id
    with transaction(doc) as tx:
        _nativise_metadata(tx, ROOT, "root.metadata")
        cells_map = tx.put_object(ROOT, CELLS, ObjType.Map)
        for cell, position in zip(cells, keys_between(None, None, len(cells)), strict=True):
            create_cell(tx, cells_map, position=position, **cell)
        tx.put(ROOT, SCHEMA_VERSION_KEY, ScalarType.Uint, 2)
    log.info("migrated notebook doc", from_version=1, to_version=2, cells=len(cells))
    return True


def migrate_v2_to_v3(doc: Document) -> bool:
    """Add the empty `comms` map and set version 3; False if already v3."""
    version = read_schema_version(doc)
    if version != 2:
        return False
    require_obj(doc, ROOT, CELLS, ObjType.Map, "root.cells (v2)")
    with transaction(doc) as tx:
        if get_obj(tx, ROOT, COMMS, ObjType.Map) is None:
            tx.put_object(ROOT, COMMS, ObjType.Map)
        tx.put(ROOT, SCHEMA_VERSION_KEY, ScalarType.Uint, SCHEMA_VERSION)
    log.info("migrated notebook doc", from_version=2, to_version=3)
    return True


def migrate(doc: Document) -> bool:
    """Bring any supported version to the current one; True if anything was written."""
    upgraded_cells = migrate_v1_to_v2(doc)
    return migrate_v2_to_v3(doc) or upgraded_cells


def _read_v1_cell(reader: Reader, cells_list: ObjId, index: int) -> dict[str, Any]:
    """One v1 cell as `create_cell` keyword arguments; tolerant of the old loose types."""
    where = f"cells[{index}] (v1)"
    cell_obj = require_obj(reader, cells_list, index, ObjType.Map, where)
    cell = read_json(reader, (ObjType.Map, cell_obj), where)
    cell_type = cell.get("cell_type", "code")
    if cell_type not in CELL_TYPES:
        raise SchemaError(f"{where}.cell_type {cell_type!r} is not one of {sorted(CELL_TYPES)}")
    source = cell.get("source", "")
    if isinstance(source, list):  # nbformat-style list of lines
        source = "".join(source)
    if not isinstance(source, str):
        raise SchemaError(f"{where}.source is {type(source).__name__}, not text")
    return {
        "cell_id": cell.get("id"),
        "cell_type": cell_type,
        "source": source,
        "metadata": _json_object(cell.get("metadata", {}), f"{where}.metadata"),
        "execution_count": _execution_count(cell.get("execution_count"), where),
        "outputs": [_output(output, f"{where}.outputs") for output in cell.get("outputs", [])],
    }


def _json_object(value: Any, where: str) -> dict[str, Any]:
    """v1 metadata: a native map or a JSON object string."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise SchemaError(f"{where} is a string but not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise SchemaError(f"{where} is {type(value).__name__}, not an object")
    return value


def _execution_count(value: Any, where: str) -> int | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise SchemaError(f"{where}.execution_count {value!r} is not JSON") from exc
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise SchemaError(f"{where}.execution_count {value!r} is not null or a count")


def _output(value: Any, where: str) -> str:
    """v1 outputs may be maps; v2 stores each as its JSON string."""
    if isinstance(value, dict):
        value = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    try:
        return check_output(value)
    except InvalidArgument as exc:
        raise SchemaError(f"{where}: {exc}") from exc


def _nativise_metadata(tx: Transaction, obj: ObjId, where: str) -> None:
    """Turn a JSON-string (or missing) root metadata into a native map."""
    stored = get(tx, obj, METADATA, where)
    if stored is not None and stored[0] == ObjType.Map:
        return
    metadata = {} if stored is None else _json_object(read_json(tx, stored, where), where)
    update_json_map(tx, tx.put_object(obj, METADATA, ObjType.Map), metadata, where=where)
