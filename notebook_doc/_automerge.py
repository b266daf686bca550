"""The only module that touches `automerge.core`: safe JSON conversion, reads, text diffs.

JSON maps onto Automerge as the schema says (null→Null, bool→Boolean, int→Int or Uint
above the i64 range, float→F64, str→Str scalar, list→List, dict→Map). Readers accept
what other clients may write for the same JSON (Uint for Int, Text for Str). Counters
are never written: the Python binding cannot read a JS counter.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final, TypeAlias

from automerge.core import (
    ROOT,
    Document,
    Message,
    ObjType,
    ScalarType,
    SyncState,
    Transaction,
)

from .errors import InvalidArgument, SchemaError

__all__ = [
    "ROOT",
    "Document",
    "Message",
    "ObjId",
    "ObjType",
    "Reader",
    "ScalarType",
    "SyncState",
    "Transaction",
    "check_text",
    "get",
    "get_fields",
    "get_obj",
    "get_scalar",
    "insert_json",
    "insert_text",
    "json_equal",
    "kind_name",
    "put_json",
    "read_json",
    "read_value",
    "replace_text",
    "set_json_key",
    "transaction",
    "update_json_map",
    "update_str_list",
]

ObjId: TypeAlias = bytes
Reader: TypeAlias = Document | Transaction
Stored: TypeAlias = tuple[Any, ObjId]  # what .get() returns: (ObjType | (ScalarType, v), id)

I64_MIN: Final = -(2**63)
I64_MAX: Final = 2**63 - 1
U64_MAX: Final = 2**64 - 1
# Above this many code-point comparisons, difflib is too slow; replace the middle instead.
_DIFF_BUDGET: Final = 4_000_000

_JSON_SCALARS: Final = (
    ScalarType.Null,
    ScalarType.Boolean,
    ScalarType.Int,
    ScalarType.Uint,
    ScalarType.F64,
    ScalarType.Str,
)


def check_text(value: object, where: str) -> str:
    """A str the binding can take: valid Unicode (a lone surrogate makes it panic)."""
    if not isinstance(value, str):
        raise InvalidArgument(f"{where} must be a str, not {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidArgument(
            f"{where} is not valid Unicode (lone surrogate at {exc.start})"
        ) from None
    return value


def _check_key(key: object, where: str) -> None:
    if not check_text(key, f"{where}: object key {key!r}"):
        raise InvalidArgument(
            f"{where}: an empty object key cannot be stored (Automerge forbids it)"
        )


def kind_name(kind: ObjType | ScalarType) -> str:
    """ "Map", "Str", ...: the binding's enums have no `.name`."""
    return str(kind).rpartition(".")[2]


@contextmanager
def transaction(doc: Document) -> Iterator[Transaction]:
    """One atomic write: committed on success, rolled back (and closed) on any exception."""
    with doc.transaction() as tx:
        yield tx


def _scalar(value: Any, where: str) -> tuple[ScalarType, Any] | ObjType:
    """The Automerge type a JSON value is stored as; InvalidArgument for non-JSON."""
    if value is None:
        return (ScalarType.Null, None)
    if isinstance(value, bool):
        return (ScalarType.Boolean, value)
    if isinstance(value, int):
        if I64_MIN <= value <= I64_MAX:
            return (ScalarType.Int, value)
        if I64_MAX < value <= U64_MAX:
            return (ScalarType.Uint, value)
        raise InvalidArgument(f"{where}: integer {value} is outside the range [-2**63, 2**64-1]")
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument(f"{where}: {value} is not a JSON number")
        return (ScalarType.F64, value)
    if isinstance(value, str):
        return (ScalarType.Str, check_text(value, where))
    if isinstance(value, list):
        return ObjType.List
    if isinstance(value, dict):
        return ObjType.Map
    raise InvalidArgument(f"{where}: {type(value).__name__} is not a JSON value")


def _fill(tx: Transaction, obj: ObjId, value: list[Any] | dict[str, Any], where: str) -> None:
    """Write the children of a freshly created List or Map."""
    if isinstance(value, dict):
        for key, child in value.items():
            _check_key(key, where)
            put_json(tx, obj, key, child, where=f"{where}.{key}")
    else:
        for index, child in enumerate(value):
            insert_json(tx, obj, index, child, where=f"{where}[{index}]")


def put_json(tx: Transaction, obj: ObjId, prop: str | int, value: Any, *, where: str) -> None:
    """Set a map key (or overwrite a list slot) to a JSON value."""
    kind = _scalar(value, where)
    if isinstance(kind, ObjType):
        _fill(tx, tx.put_object(obj, prop, kind), value, where)
    else:
        tx.put(obj, prop, *kind)


def insert_json(tx: Transaction, obj: ObjId, index: int, value: Any, *, where: str) -> None:
    """Insert a JSON value into a list."""
    kind = _scalar(value, where)
    if isinstance(kind, ObjType):
        _fill(tx, tx.insert_object(obj, index, kind), value, where)
    else:
        tx.insert(obj, index, *kind)


def read_json(reader: Reader, stored: Stored, where: str) -> Any:
    """The JSON value of what `.get()` returned; SchemaError for non-JSON (counters, bytes)."""
    value, obj_id = stored
    if value == ObjType.Map:
        return {
            key: read_json(reader, _get(reader, obj_id, key, f"{where}.{key}"), f"{where}.{key}")
            for key in reader.keys(obj_id)
        }
    if value == ObjType.List:
        return [
            read_json(reader, _get(reader, obj_id, index, f"{where}[{index}]"), f"{where}[{index}]")
            for index in range(reader.length(obj_id))
        ]
    if value == ObjType.Text:
        return reader.text(obj_id)
    scalar_type, scalar = value
    if scalar_type not in _JSON_SCALARS:
        raise SchemaError(f"{where} holds a {kind_name(scalar_type)} value, which is not JSON")
    return scalar


def get(reader: Reader, obj: ObjId, prop: str | int, where: str = "") -> Stored | None:
    """`reader.get`, turning the binding's panic on a value it cannot convert (a JS
    Counter) into a SchemaError. Such a panic leaves the document usable."""
    try:
        return reader.get(obj, prop)
    except BaseException as exc:  # pyo3's PanicException derives from BaseException
        if type(exc).__name__ != "PanicException":
            raise
        what = where or repr(prop)
        message = f"{what} holds a value the Python binding cannot read (a Counter?)"
        raise SchemaError(message) from None


def get_fields(reader: Reader, obj: ObjId, where: str) -> dict[str, Stored]:
    """Every key of the Map `obj` with what `.get()` would return for it, in two calls
    to the binding (a key at a time costs three times as much for a widget's comm)."""
    try:
        return dict(zip(reader.keys(obj), reader.values(obj), strict=True))
    except BaseException as exc:  # pyo3's PanicException derives from BaseException
        if type(exc).__name__ != "PanicException":
            raise
        message = f"{where} holds a value the Python binding cannot read (a Counter?)"
        raise SchemaError(message) from None


def _get(reader: Reader, obj: ObjId, prop: str | int, where: str) -> Stored:
    stored = get(reader, obj, prop, where)
    if stored is None:  # only when the caller's key or index list went stale
        raise SchemaError(f"{where} vanished while reading")
    return stored


def read_value(reader: Reader, obj: ObjId, prop: str | int, where: str) -> Any:
    """JSON value at `obj[prop]`; SchemaError when missing."""
    stored = get(reader, obj, prop, where)
    if stored is None:
        raise SchemaError(f"{where} is missing")
    return read_json(reader, stored, where)


def get_obj(reader: Reader, obj: ObjId, prop: str | int, kind: ObjType) -> ObjId | None:
    """Id of the `kind` object at `obj[prop]`; None when absent or anything else."""
    stored = _get_or_none(reader, obj, prop)
    if stored is None or stored[0] != kind:
        return None
    return stored[1]


def get_scalar(reader: Reader, obj: ObjId, prop: str | int) -> tuple[ScalarType, Any] | None:
    """(ScalarType, value) at `obj[prop]`; None when absent, an object or unreadable."""
    stored = _get_or_none(reader, obj, prop)
    if stored is None or isinstance(stored[0], ObjType):
        return None
    return stored[0]


def _get_or_none(reader: Reader, obj: ObjId, prop: str | int) -> Stored | None:
    """For callers that only compare: an unreadable value never equals what they expect."""
    try:
        return get(reader, obj, prop)
    except SchemaError:
        return None


def json_equal(a: Any, b: Any) -> bool:
    """Equality that tells 1 from 1.0 from True, as the stored types do.

    0.0 and -0.0 are equal: Automerge itself skips a put of one over the other.
    """
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


def update_json_map(tx: Transaction, obj: ObjId, new: dict[str, Any], *, where: str) -> bool:
    """Make the Map at `obj` equal `new`, writing only keys whose value differs."""
    changed = False
    for key in tx.keys(obj):
        if key not in new:
            tx.delete(obj, key)
            changed = True
    for key, value in new.items():
        _check_key(key, where)
        changed = set_json_key(tx, obj, key, value, where=f"{where}.{key}") or changed
    return changed


def set_json_key(tx: Transaction, obj: ObjId, key: str, value: Any, *, where: str) -> bool:
    """Set one map key to a JSON value; nested objects are updated in place, not replaced."""
    stored = get(tx, obj, key, where)
    if stored is not None and stored[0] == ObjType.Map and isinstance(value, dict):
        return update_json_map(tx, stored[1], value, where=where)
    if stored is not None and _stored_equals(tx, stored, value, where):
        return False
    put_json(tx, obj, key, value, where=where)
    return True


def _stored_equals(reader: Reader, stored: Stored, value: Any, where: str) -> bool:
    """Whether a stored value already equals `value` (Int and Uint read alike; non-JSON never)."""
    try:
        current = read_json(reader, stored, where)
    except SchemaError:
        return False
    return json_equal(current, value)


def insert_text(tx: Transaction, text_obj: ObjId, index: int, text: str) -> None:
    """Insert `text` at code-point `index`, one code point per op (the binding has no splice)."""
    for offset, char in enumerate(text):
        tx.insert(text_obj, index + offset, ScalarType.Str, char)


def _delete_text(tx: Transaction, text_obj: ObjId, index: int, count: int) -> None:
    for _ in range(count):
        tx.delete(text_obj, index)


def replace_text(tx: Transaction, text_obj: ObjId, old: str, new: str) -> bool:
    """Turn Text `old` into `new` with a minimal edit, so concurrent edits elsewhere survive."""
    if old == new:
        return False
    prefix = 0
    limit = min(len(old), len(new))
    while prefix < limit and old[prefix] == new[prefix]:
        prefix += 1
    suffix = 0
    while suffix < limit - prefix and old[-1 - suffix] == new[-1 - suffix]:
        suffix += 1
    old_mid = old[prefix : len(old) - suffix]
    new_mid = new[prefix : len(new) - suffix]
    if not old_mid or not new_mid or len(old_mid) * len(new_mid) > _DIFF_BUDGET:
        opcodes = [("replace", 0, len(old_mid), 0, len(new_mid))]
    else:
        opcodes = difflib.SequenceMatcher(None, old_mid, new_mid, autojunk=False).get_opcodes()
    # From the end, so earlier indexes stay valid; insert before deleting, because
    # inserting just past fresh tombstones is quadratic in the binding.
    for tag, i1, i2, j1, j2 in reversed(opcodes):
        if tag == "equal":
            continue
        insert_text(tx, text_obj, prefix + i1, new_mid[j1:j2])
        _delete_text(tx, text_obj, prefix + i1 + (j2 - j1), i2 - i1)
    return True


def update_str_list(tx: Transaction, list_obj: ObjId, old: list[str], new: list[str]) -> bool:
    """Make a List<Str> equal `new`, touching only the slots that differ."""
    if old == new:
        return False
    for index in range(min(len(old), len(new))):
        if old[index] != new[index]:
            tx.put(list_obj, index, ScalarType.Str, new[index])
    for index in range(len(old) - 1, len(new) - 1, -1):
        tx.delete(list_obj, index)
    for index in range(len(old), len(new)):
        tx.insert(list_obj, index, ScalarType.Str, new[index])
    return True
