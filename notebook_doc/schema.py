"""Schema v3 names and strict field readers; reading a field is validating it.

Readers raise SchemaError naming the exact path (`cells['a'].source is a Str, not
Text`), and `validate()` is those same readers run over the whole document with the
errors collected, so "what the code reads" and "what validate accepts" cannot drift.
"""

from __future__ import annotations

import re
from typing import Any, Final

from ._automerge import ROOT, ObjId, ObjType, Reader, ScalarType, Stored, get, kind_name
from .errors import SchemaError, UnsupportedSchemaVersion

SCHEMA_VERSION: Final = 3

SCHEMA_VERSION_KEY: Final = "schema_version"
NOTEBOOK_ID: Final = "notebook_id"
CELLS: Final = "cells"
METADATA: Final = "metadata"
COMMS: Final = "comms"

CELL_TYPES: Final = frozenset({"code", "markdown", "raw"})
# An output (or comm output) moved to the blob store is referenced by its sha256.
BLOB_HASH: Final = re.compile(r"[0-9a-f]{64}")


def describe(value: ObjType | tuple[ScalarType, Any] | None) -> str:
    """Human name of what `.get()` returned, for error messages."""
    if value is None:
        return "missing"
    kind = value if isinstance(value, ObjType) else value[0]
    return f"a {kind_name(kind)}"


def read_str(reader: Reader, obj: ObjId, key: str, where: str) -> str:
    """A Str scalar field."""
    return as_str(get(reader, obj, key, f"{where}.{key}"), f"{where}.{key}")


def as_str(stored: Stored | None, where: str) -> str:
    """The Str that `.get()` (or `get_fields`) returned for the field at `where`."""
    if stored is None:
        raise SchemaError(f"{where} is missing")
    value = stored[0]
    if isinstance(value, ObjType) or value[0] != ScalarType.Str:
        raise SchemaError(f"{where} is {describe(value)}, not a Str")
    return str(value[1])


def read_uint(reader: Reader, obj: ObjId, key: str, where: str) -> int:
    """A non-negative integer field: Uint as written here, Int as other clients may write."""
    return as_uint(get(reader, obj, key, f"{where}.{key}"), f"{where}.{key}")


def as_uint(stored: Stored | None, where: str) -> int:
    """The non-negative integer that `.get()` (or `get_fields`) returned at `where`."""
    if stored is None:
        raise SchemaError(f"{where} is missing")
    value = stored[0]
    if isinstance(value, ObjType) or value[0] not in (ScalarType.Uint, ScalarType.Int):
        raise SchemaError(f"{where} is {describe(value)}, not a Uint")
    if value[1] < 0:
        raise SchemaError(f"{where} is negative ({value[1]})")
    return int(value[1])


def require_obj(reader: Reader, obj: ObjId, key: str | int, kind: ObjType, where: str) -> ObjId:
    """The id of the `kind` object at `obj[key]`."""
    stored = get(reader, obj, key, where)
    if stored is None:
        raise SchemaError(f"{where} is missing")
    if stored[0] != kind:
        raise SchemaError(f"{where} is {describe(stored[0])}, not a {kind_name(kind)}")
    return stored[1]


def read_str_list(reader: Reader, obj: ObjId, key: str, where: str) -> list[str]:
    """A List<Str> field."""
    list_obj = require_obj(reader, obj, key, ObjType.List, f"{where}.{key}")
    items: list[str] = []
    for index in range(reader.length(list_obj)):
        item_where = f"{where}.{key}[{index}]"
        stored = get(reader, list_obj, index, item_where)
        value = None if stored is None else stored[0]
        if value is None or isinstance(value, ObjType) or value[0] != ScalarType.Str:
            raise SchemaError(f"{item_where} is {describe(value)}, not a Str")
        items.append(value[1])
    return items


def read_schema_version(reader: Reader) -> int:
    """The document's version (missing = 1); newer than this code is refused."""
    if get(reader, ROOT, SCHEMA_VERSION_KEY, "root.schema_version") is None:
        return 1
    version = read_uint(reader, ROOT, SCHEMA_VERSION_KEY, "root")
    if version > SCHEMA_VERSION:
        raise UnsupportedSchemaVersion(version, SCHEMA_VERSION)
    if version < 1:
        raise SchemaError(f"root.schema_version is {version}; versions start at 1")
    return version
