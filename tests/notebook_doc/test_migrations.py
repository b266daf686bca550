"""v1 and v2 documents, written the way older code wrote them, load as v3 with nothing lost."""

from __future__ import annotations

import json

import pytest
from automerge.core import ROOT, Document, ObjType, ScalarType

from notebook_doc import NotebookDoc, SchemaError
from notebook_doc.migrations import migrate_v1_to_v2, migrate_v2_to_v3

STREAM = {"output_type": "stream", "name": "stdout", "text": "1\n"}
V1_CELLS = [
    {
        "id": "c1",
        "cell_type": "markdown",
        "source": "# Title 😀",
        "metadata": json.dumps({"tags": ["intro"]}),
        "execution_count": None,
        "outputs": [],
    },
    {
        "id": "c2",
        "cell_type": "code",
        "source": "print(1)",
        "metadata": "{}",
        "execution_count": 3,
        "outputs": [json.dumps(STREAM), "e" * 64],
    },
    {
        "id": "c3",
        "cell_type": "raw",
        "source": "",
        "metadata": {"format": "text/plain"},
        "execution_count": "null",
        "outputs": [],
    },
]
NOTEBOOK_METADATA = {"kernelspec": {"name": "python3", "display_name": "Python 3"}}


def _text(tx, obj: bytes, key: str | int, text: str, *, insert: bool = False) -> None:
    target = (
        tx.insert_object(obj, key, ObjType.Text)
        if insert
        else tx.put_object(obj, key, ObjType.Text)
    )
    for index, char in enumerate(text):
        tx.insert(target, index, ScalarType.Str, char)


def _fill_cell(tx, cell: bytes, spec: dict) -> None:
    tx.put(cell, "id", ScalarType.Str, spec["id"])
    tx.put(cell, "cell_type", ScalarType.Str, spec["cell_type"])
    _text(tx, cell, "source", spec["source"])
    count = spec["execution_count"]
    if count is None:
        tx.put(cell, "execution_count", ScalarType.Null, None)
    elif isinstance(count, int):
        tx.put(cell, "execution_count", ScalarType.Int, count)
    else:
        tx.put(cell, "execution_count", ScalarType.Str, count)
    outputs = tx.put_object(cell, "outputs", ObjType.List)
    for index, output in enumerate(spec["outputs"]):
        tx.insert(outputs, index, ScalarType.Str, output)
    if isinstance(spec["metadata"], str):
        tx.put(cell, "metadata", ScalarType.Str, spec["metadata"])
    else:
        metadata = tx.put_object(cell, "metadata", ObjType.Map)
        for key, value in spec["metadata"].items():
            tx.put(metadata, key, ScalarType.Str, value)


def v1_doc(cells: list[dict] = V1_CELLS) -> Document:
    """A v1 notebook: no schema_version, cells a List, metadata a JSON string."""
    raw = Document(actor_id=b"\x0a" * 16)
    with raw.transaction() as tx:
        tx.put(ROOT, "notebook_id", ScalarType.Str, "old-nb")
        tx.put(ROOT, "metadata", ScalarType.Str, json.dumps(NOTEBOOK_METADATA))
        cell_list = tx.put_object(ROOT, "cells", ObjType.List)
        for index, spec in enumerate(cells):
            _fill_cell(tx, tx.insert_object(cell_list, index, ObjType.Map), spec)
    return raw


def v2_doc() -> Document:
    """A v2 notebook: cells a Map with positions, native metadata, no comms."""
    raw = Document(actor_id=b"\x0b" * 16)
    with raw.transaction() as tx:
        tx.put(ROOT, "schema_version", ScalarType.Int, 2)
        tx.put(ROOT, "notebook_id", ScalarType.Str, "v2-nb")
        metadata = tx.put_object(ROOT, "metadata", ObjType.Map)
        kernelspec = tx.put_object(metadata, "kernelspec", ObjType.Map)
        tx.put(kernelspec, "name", ScalarType.Str, "python3")
        cells = tx.put_object(ROOT, "cells", ObjType.Map)
        for spec, position in zip(V1_CELLS[:2], ("4", "8"), strict=True):
            cell = tx.put_object(cells, spec["id"], ObjType.Map)
            _fill_cell(tx, cell, {**spec, "metadata": {}, "execution_count": "null"})
            tx.put(cell, "position", ScalarType.Str, position)
    return raw


def change_count(data: bytes) -> int:
    return len(Document.load(data).get_changes([]))


def test_v1_loads_as_v3_with_everything_kept() -> None:
    raw = v1_doc()
    doc = NotebookDoc.load(raw.save())
    assert doc.schema_version == 3
    assert doc.notebook_id == "old-nb"
    assert doc.validate() == []
    assert doc.get_metadata() == NOTEBOOK_METADATA
    assert doc.get_comms() == []
    cells = doc.get_cells()
    assert [c.id for c in cells] == ["c1", "c2", "c3"]
    assert [c.source for c in cells] == ["# Title 😀", "print(1)", ""]
    assert [c.cell_type for c in cells] == ["markdown", "code", "raw"]
    assert [c.execution_count for c in cells] == [None, 3, None]
    assert cells[0].metadata == {"tags": ["intro"]}
    assert cells[2].metadata == {"format": "text/plain"}
    assert cells[1].outputs == [json.dumps(STREAM), "e" * 64]
    # One change per migration on top of the old writer's single change.
    assert change_count(doc.save()) == change_count(raw.save()) + 2


def test_v1_migration_is_idempotent() -> None:
    raw = v1_doc()
    assert migrate_v1_to_v2(raw) is True
    heads = raw.get_heads()
    assert migrate_v1_to_v2(raw) is False
    assert raw.get_heads() == heads
    assert migrate_v2_to_v3(raw) is True
    heads = raw.get_heads()
    assert migrate_v2_to_v3(raw) is False
    assert migrate_v1_to_v2(raw) is False
    assert raw.get_heads() == heads


def test_migration_methods_on_a_current_doc_change_nothing() -> None:
    doc = NotebookDoc.load(v1_doc().save())
    heads = doc.get_heads()
    assert doc.migrate_v1_to_v2() is False
    assert doc.migrate_v2_to_v3() is False
    assert doc.get_heads() == heads


def test_v1_missing_and_repeated_ids_get_fresh_ones() -> None:
    cells = [
        {**V1_CELLS[1], "id": "same"},
        {**V1_CELLS[1], "id": "same"},
        {**V1_CELLS[0], "id": ""},
    ]
    doc = NotebookDoc.load(v1_doc(cells).save())
    ids = doc.cell_ids()
    assert ids[0] == "same"
    assert len(set(ids)) == 3
    assert all(ids)
    assert [c.source for c in doc.get_cells()] == ["print(1)", "print(1)", "# Title 😀"]


def test_v2_loads_as_v3() -> None:
    raw = v2_doc()
    doc = NotebookDoc.load(raw.save())
    assert doc.schema_version == 3
    assert doc.validate() == []
    assert [(c.id, c.position, c.source) for c in doc.get_cells()] == [
        ("c1", "4", "# Title 😀"),
        ("c2", "8", "print(1)"),
    ]
    assert doc.get_metadata() == {"kernelspec": {"name": "python3"}}
    assert change_count(doc.save()) == change_count(raw.save()) + 1
    again = NotebookDoc.load(doc.save())
    assert again.get_heads() == doc.get_heads()


def test_v1_with_cells_not_a_list_is_a_schema_error() -> None:
    raw = Document()
    with raw.transaction() as tx:
        tx.put(ROOT, "notebook_id", ScalarType.Str, "n")
        tx.put(ROOT, "cells", ScalarType.Str, "oops")
    with pytest.raises(SchemaError, match=r"root\.cells \(v1\) is a Str, not a List"):
        NotebookDoc.load(raw.save())


def test_v1_with_bad_metadata_string_is_a_schema_error() -> None:
    cells = [{**V1_CELLS[0], "metadata": "{not json"}]
    with pytest.raises(SchemaError, match=r"cells\[0\] \(v1\)\.metadata is a string but not JSON"):
        NotebookDoc.load(v1_doc(cells).save())


def test_v2_claiming_list_cells_is_a_schema_error() -> None:
    raw = v1_doc()
    with raw.transaction() as tx:
        tx.put(ROOT, "schema_version", ScalarType.Uint, 2)
    with pytest.raises(SchemaError, match=r"root\.cells \(v2\) is a List, not a Map"):
        NotebookDoc.load(raw.save())


def test_empty_automerge_doc_is_a_schema_error() -> None:
    with pytest.raises(SchemaError, match=r"root\.cells \(v1\) is missing"):
        NotebookDoc.load(Document().save())
