"""Docs written from docs/schema.md alone load: foreign positions, v1 without an id,
comms without `outputs`. JS docs come from the real @automerge/automerge peer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from automerge.core import ROOT, Document, ObjType, ScalarType
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_js_interop import as_json, node, run_peer  # noqa: F401  (node is a fixture)

from notebook_doc import NotebookDoc, SchemaError
from notebook_doc.files import load_or_create
from notebook_doc.positions import is_readable_position, is_valid_position


def js_variant(node: str, tmp_path: Path, name: str) -> tuple[Path, dict]:  # noqa: F811
    path = tmp_path / f"{name}.automerge"
    run_peer(node, "write-variant", name, str(path))
    return path, json.loads(run_peer(node, "dump", str(path)))


def positions_of(doc: NotebookDoc) -> dict[str, str]:
    return {cell.id: cell.position for cell in doc.get_cells()}


def test_js_positions_of_any_hex_load_and_take_inserts(node: str, tmp_path: Path) -> None:  # noqa: F811
    path, seen_by_js = js_variant(node, tmp_path, "positions")
    doc = NotebookDoc.load(path.read_bytes())
    assert as_json(doc.to_json()) == seen_by_js
    assert doc.cell_ids() == ["f", "a", "b", "c", "e", "d", "g"]
    foreign = positions_of(doc)

    # No room before "0": only "f" moves, in the same change as the insert.
    heads = len(doc.get_heads())
    first = doc.add_cell(index=0, cell_id="new-0")
    assert len(doc.get_heads()) == heads
    assert doc.cell_ids()[:2] == [first, "f"]
    moved = {k for k, v in positions_of(doc).items() if foreign.get(k, v) != v}
    assert moved == {"f"}
    # Between "8" and "80" (equal as fractions), and between the tied "80"s.
    doc.add_cell(after="b", cell_id="new-b")
    doc.add_cell(after="c", cell_id="new-c")
    doc.add_cell(after="e", cell_id="new-e")
    doc.add_cell(cell_id="new-end")
    assert doc.cell_ids() == [
        "new-0", "f", "a", "b", "new-b", "c", "new-c", "e", "new-e", "d", "g", "new-end",
    ]  # fmt: skip
    untouched = {"a", "g"}
    assert all(positions_of(doc)[k] == foreign[k] for k in untouched)
    assert all(is_valid_position(positions_of(doc)[k]) for k in doc.cell_ids() if "new" in k)
    # The JS peer sees the same order after the re-keying.
    path.write_bytes(doc.save())
    assert json.loads(run_peer(node, "dump", str(path))) == as_json(doc.to_json())


def test_js_v1_doc_without_notebook_id_takes_the_rooms_id(node: str, tmp_path: Path) -> None:  # noqa: F811
    path, seen_by_js = js_variant(node, tmp_path, "v1-without-id")
    assert (seen_by_js["notebook_id"], seen_by_js["schema_version"]) == (None, None)
    with pytest.raises(SchemaError, match="notebook_id is missing"):
        NotebookDoc.load(path.read_bytes())
    doc = NotebookDoc.load(path.read_bytes(), notebook_id="room-7")
    assert (doc.notebook_id, doc.schema_version, doc.validate()) == ("room-7", 3, [])
    cells = doc.get_cells()
    assert [(c.id, c.cell_type, c.source, c.execution_count) for c in cells] == [
        ("first", "markdown", "# v1", None),
        ("second", "code", "1 + 1", 2),
    ]
    assert json.loads(cells[1].outputs[0])["data"] == {"text/plain": "2"}
    reloaded = NotebookDoc.load(doc.save())  # the id is stored now
    assert reloaded.notebook_id == "room-7"
    # The daemon's loader gives it the room's id too, rather than setting the file aside.
    opened, warning = load_or_create(path, "room-7")
    assert (opened.notebook_id, warning, path.exists()) == ("room-7", None, True)


def test_js_comm_without_outputs_reads_as_empty(node: str, tmp_path: Path) -> None:  # noqa: F811
    path, seen_by_js = js_variant(node, tmp_path, "comm-without-outputs")
    doc = NotebookDoc.load(path.read_bytes())
    assert as_json(doc.to_json()) == seen_by_js
    slider = doc.get_comm("slider")
    assert slider is not None
    assert (slider.outputs, slider.seq, slider.state) == ([], 0, {"value": 7})
    heads = doc.get_heads()
    assert doc.set_comm_outputs("slider", []) is False  # nothing to write
    assert doc.clear_comm_outputs("slider") is False
    assert doc.get_heads() == heads


def test_outputs_are_written_for_output_widgets_only() -> None:
    doc = NotebookDoc.new("nb")
    doc.put_comm("s", "jupyter.widget", "@jupyter-widgets/controls", "IntSliderModel", "{}", 0)
    doc.put_comm("o", "jupyter.widget", "@jupyter-widgets/output", "OutputModel", "{}", 1)
    raw = Document.load(doc.save())
    comms = raw.get(ROOT, "comms")[1]
    assert raw.get(raw.get(comms, "s")[1], "outputs") is None
    assert raw.get(raw.get(comms, "o")[1], "outputs")[0] == ObjType.List
    heads = doc.get_heads()  # reopening with the same values adds no change
    doc.put_comm("s", "jupyter.widget", "@jupyter-widgets/controls", "IntSliderModel", "{}", 0)
    doc.put_comm("o", "jupyter.widget", "@jupyter-widgets/output", "OutputModel", "{}", 1)
    assert doc.get_heads() == heads


foreign_positions = st.from_regex(r"[0-9a-f]{1,3}", fullmatch=True)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    keys=st.lists(foreign_positions, min_size=0, max_size=8),
    inserts=st.lists(st.integers(0, 20), min_size=1, max_size=8),
    moves=st.lists(st.tuples(st.integers(0, 20), st.integers(0, 20)), max_size=4),
)
def test_inserts_anywhere_among_foreign_positions(
    keys: list[str], inserts: list[int], moves: list[tuple[int, int]]
) -> None:
    """Another client's keys (trailing zeros, ties): every insert and move lands where
    asked, and every other cell keeps its place."""
    doc = NotebookDoc.new("nb")
    raw = Document.load(doc.save())
    with raw.transaction() as tx:
        cells = tx.get(ROOT, "cells")[1]
        for index, position in enumerate(keys):
            cell = tx.put_object(cells, f"x{index}", ObjType.Map)
            tx.put(cell, "id", ScalarType.Str, f"x{index}")
            tx.put(cell, "cell_type", ScalarType.Str, "code")
            tx.put(cell, "position", ScalarType.Str, position)
            tx.put_object(cell, "source", ObjType.Text)
            tx.put(cell, "execution_count", ScalarType.Str, "null")
            tx.put_object(cell, "outputs", ObjType.List)
            tx.put_object(cell, "metadata", ObjType.Map)
    doc = NotebookDoc.load(raw.save())
    expected = doc.cell_ids()
    for number, where in enumerate(inserts):
        index = where % (len(expected) + 1)
        expected.insert(index, doc.add_cell(index=index, cell_id=f"n{number}"))
        assert doc.cell_ids() == expected
    for source, target in moves:
        moved = expected.pop(source % len(expected))
        index = target % (len(expected) + 1)
        expected.insert(index, moved)
        doc.move_cell(moved, index=index)
        assert doc.cell_ids() == expected
    positions = positions_of(NotebookDoc.load(doc.save()))
    assert all(is_readable_position(p) for p in positions.values())
    assert all(is_valid_position(positions[f"n{n}"]) for n in range(len(inserts)))
    assert doc.validate() == []
