"""Loading bad bytes and hostile shapes: clear errors, nothing written; validate and repair."""

from __future__ import annotations

import os
import re
from collections.abc import Callable

import pytest
from automerge.core import ROOT, Document, ObjType, ScalarType
from nbdoc_helpers import push_raw, raw_copy

from notebook_doc import (
    CorruptDocumentError,
    InvalidArgument,
    NotebookDoc,
    NotebookDocError,
    SchemaError,
    UnsupportedSchemaVersion,
)

HASH = "c" * 64


def sample(doc: NotebookDoc) -> str:
    cell_id = doc.add_cell(source="x = 1", cell_id="cell-1", metadata={"tags": ["t"]})
    doc.append_output(cell_id, HASH)
    doc.put_comm("w1", "jupyter.widget", "m", "OutputModel", '{"value": 1}', 0)
    doc.update_metadata("kernelspec", {"name": "python3"})
    return cell_id


@pytest.mark.parametrize(
    "data",
    [b"", b"garbage", os.urandom(64), b"\x85\x6f\x4a\x83" + os.urandom(40)],
    ids=["empty", "text", "random", "magic-then-random"],
)
def test_undecodable_bytes(data: bytes) -> None:
    with pytest.raises(CorruptDocumentError):
        NotebookDoc.load(data)


def test_truncated_save(doc: NotebookDoc) -> None:
    sample(doc)
    data = doc.save()
    for cut in (1, len(data) // 2, len(data) - 1):
        with pytest.raises(CorruptDocumentError, match="not an Automerge document"):
            NotebookDoc.load(data[:cut])


def test_load_rejects_non_bytes() -> None:
    with pytest.raises(InvalidArgument, match="bytes"):
        NotebookDoc.load("text")  # type: ignore[arg-type]


def test_load_with_actor_and_round_trip(doc: NotebookDoc) -> None:
    sample(doc)
    loaded = NotebookDoc.load(doc.save(), actor_id=b"\x02" * 16)
    assert loaded.actor_id == b"\x02" * 16
    assert loaded.to_json() == doc.to_json()
    assert loaded.get_heads() == doc.get_heads()  # loading a v3 doc writes nothing


def test_newer_schema_is_refused() -> None:
    raw = Document()
    with raw.transaction() as tx:
        tx.put(ROOT, "schema_version", ScalarType.Uint, 4)
        tx.put(ROOT, "notebook_id", ScalarType.Str, "n")
    with pytest.raises(
        UnsupportedSchemaVersion, match=r"schema_version 4.*supports versions 1 to 3"
    ):
        NotebookDoc.load(raw.save())


def test_version_written_as_int_is_accepted(doc: NotebookDoc) -> None:
    raw = raw_copy(doc)
    with raw.transaction() as tx:
        tx.put(ROOT, "schema_version", ScalarType.Int, 3)
    assert NotebookDoc.load(raw.save()).schema_version == 3


Mutation = Callable[[Document], None]


def _cell(raw: Document) -> bytes:
    cells = raw.get(ROOT, "cells")[1]  # type: ignore[index]
    return raw.get(cells, "cell-1")[1]  # type: ignore[index]


def _comm(raw: Document) -> bytes:
    comms = raw.get(ROOT, "comms")[1]  # type: ignore[index]
    return raw.get(comms, "w1")[1]  # type: ignore[index]


def _put(
    target: Callable[[Document], bytes], key: str, kind: ScalarType, value: object
) -> Mutation:
    def mutate(raw: Document) -> None:
        with raw.transaction() as tx:
            tx.put(target(raw), key, kind, value)

    return mutate


def _put_object(target: Callable[[Document], bytes], key: str, kind: ObjType) -> Mutation:
    def mutate(raw: Document) -> None:
        with raw.transaction() as tx:
            tx.put_object(target(raw), key, kind)

    return mutate


def _root(_: Document) -> bytes:
    return ROOT


HOSTILE: dict[str, tuple[Mutation, str]] = {
    "cells is a Str": (
        _put(_root, "cells", ScalarType.Str, "x"),
        r"root\.cells is a Str, not a Map",
    ),
    "comms is a List": (_put_object(_root, "comms", ObjType.List), r"root\.comms is a List"),
    "metadata is an Int": (_put(_root, "metadata", ScalarType.Int, 1), r"root\.metadata is a Int"),
    "notebook_id missing": (
        lambda raw: _delete(raw, ROOT, "notebook_id"),
        r"root\.notebook_id is missing",
    ),
    "schema_version is a Str": (
        _put(_root, "schema_version", ScalarType.Str, "3"),
        r"schema_version is a Str",
    ),
    "comm state is an Int": (
        _put(_comm, "state", ScalarType.Int, 5),
        r"comms\['w1'\]\.state is a Int",
    ),
    "comm state not JSON": (_put(_comm, "state", ScalarType.Str, "{"), r"state is not valid JSON"),
    "comm state an array": (_put(_comm, "state", ScalarType.Str, "[]"), r"not an object"),
    "comm seq negative": (_put(_comm, "seq", ScalarType.Int, -1), r"seq is negative"),
    "comm seq a Str": (_put(_comm, "seq", ScalarType.Str, "1"), r"seq is a Str"),
    "comm outputs inline JSON": (
        lambda raw: _insert(raw, _comm, "outputs", ScalarType.Str, "{}"),
        r"outputs\[0\] is not a 64-hex blob hash",
    ),
    "comm target missing": (
        lambda raw: _delete(raw, _comm(raw), "target_name"),
        r"target_name is missing",
    ),
    "cell source a Str": (
        _put(_cell, "source", ScalarType.Str, "x"),
        r"source is a Str, not a Text",
    ),
    "cell type unknown": (_put(_cell, "cell_type", ScalarType.Str, "sql"), r"cell_type 'sql'"),
    "cell id mismatch": (_put(_cell, "id", ScalarType.Str, "other"), r"id is 'other', not its key"),
    "cell position bad": (_put(_cell, "position", ScalarType.Str, "ZZ"), r"position 'ZZ'"),
    "execution_count an Int": (
        _put(_cell, "execution_count", ScalarType.Int, 3),
        r"execution_count is a Int",
    ),
    "execution_count junk": (
        _put(_cell, "execution_count", ScalarType.Str, "three"),
        r"execution_count is 'three'",
    ),
    "outputs a Map": (_put_object(_cell, "outputs", ObjType.Map), r"outputs is a Map"),
    "output an Int": (
        lambda raw: _insert(raw, _cell, "outputs", ScalarType.Int, 1),
        r"outputs\[1\] is a Int",
    ),
    "bytes in metadata": (
        lambda raw: _put_in_metadata(raw, ScalarType.Bytes, b"\x00"),
        r"metadata\.bad holds a Bytes value",
    ),
    "cell not a map": (
        _put(lambda raw: raw.get(ROOT, "cells")[1], "cell-1", ScalarType.Str, "x"),
        "not a Map",
    ),  # type: ignore[index]
}


def _delete(raw: Document, obj: bytes, key: str) -> None:
    with raw.transaction() as tx:
        tx.delete(obj, key)


def _insert(
    raw: Document, target: Callable[[Document], bytes], key: str, kind: ScalarType, value: object
) -> None:
    items = raw.get(target(raw), key)[1]  # type: ignore[index]
    with raw.transaction() as tx:
        tx.insert(items, raw.length(items), kind, value)


def _put_in_metadata(raw: Document, kind: ScalarType, value: object) -> None:
    metadata = raw.get(ROOT, "metadata")[1]  # type: ignore[index]
    with raw.transaction() as tx:
        tx.put(metadata, "bad", kind, value)


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_doc_fails_to_load(doc: NotebookDoc, case: str) -> None:
    mutate, message = HOSTILE[case]
    sample(doc)
    raw = raw_copy(doc)
    mutate(raw)
    with pytest.raises(SchemaError, match=message):
        NotebookDoc.load(raw.save())


# A loaded file may hold any notebook id; a peer must not change a live doc's.
HOSTILE_SYNC = {
    **HOSTILE,
    "notebook_id changed": (
        _put(_root, "notebook_id", ScalarType.Str, "other"),
        r"root\.notebook_id is 'other', not 'notebook-1'",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE_SYNC))
def test_validate_reports_and_repair_fixes_hostile_sync(doc: NotebookDoc, case: str) -> None:
    """A peer syncs a hostile change in: validate names it, repair restores the shape."""
    mutate, message = HOSTILE_SYNC[case]
    sample(doc)
    assert doc.validate() == []
    raw = raw_copy(doc)
    mutate(raw)
    push_raw(raw, doc)
    problems = doc.validate()
    assert any(re.search(message, p) for p in problems), problems
    assert doc.repair()
    assert doc.validate() == []
    doc.to_json()  # every reader works again
    assert doc.notebook_id == "notebook-1"
    heads = doc.get_heads()
    assert doc.repair() == []
    assert doc.get_heads() == heads


def test_repair_keeps_what_it_can(doc: NotebookDoc) -> None:
    sample(doc)
    later = doc.add_cell(source="later")
    raw = raw_copy(doc)
    _put(_cell, "source", ScalarType.Str, "kept source")(raw)
    _put(_cell, "position", ScalarType.Str, "")(raw)
    push_raw(raw, doc)
    assert doc.repair() == [
        "reset cells['cell-1'].source",
        "moved cells['cell-1'] to the end (bad position)",
    ]
    cell = doc.get_cell("cell-1")
    assert cell is not None
    assert (cell.source, cell.outputs, cell.metadata) == ("kept source", [HASH], {"tags": ["t"]})
    assert doc.cell_ids() == [later, "cell-1"]


def test_readers_raise_schema_errors_on_hostile_docs(doc: NotebookDoc) -> None:
    sample(doc)
    raw = raw_copy(doc)
    _put(_comm, "state", ScalarType.Int, 5)(raw)
    _put(_cell, "execution_count", ScalarType.Int, 3)(raw)
    push_raw(raw, doc)
    for read in (doc.get_comms, lambda: doc.get_comm("w1"), lambda: doc.get_comm_state_json("w1")):
        with pytest.raises(SchemaError, match=r"comms\['w1'\]\.state"):
            read()
    with pytest.raises(SchemaError, match="execution_count"):
        doc.get_cells()
    assert isinstance(SchemaError("x"), NotebookDocError)
