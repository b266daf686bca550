"""Cells: add, delete, move, read, sources, outputs, execution counts, metadata."""

from __future__ import annotations

import json

import pytest

from notebook_doc import (
    CellNotFound,
    CellSnapshot,
    InvalidArgument,
    NewCell,
    NotebookDoc,
)

STREAM = json.dumps({"output_type": "stream", "name": "stdout", "text": "hi\n"})
RESULT = json.dumps(
    {
        "output_type": "execute_result",
        "data": {"text/plain": "2"},
        "metadata": {},
        "execution_count": 1,
    }
)
HASH = "ab" * 32


def test_new_doc_is_empty_v3(doc: NotebookDoc) -> None:
    assert doc.schema_version == 3
    assert doc.notebook_id == "notebook-1"
    assert doc.actor_id == b"\x01" * 16
    assert doc.get_cells() == []
    assert doc.cell_ids() == []
    assert doc.get_metadata() == {}
    assert doc.get_comms() == []
    assert doc.validate() == []
    assert doc.to_json() == {
        "notebook_id": "notebook-1",
        "schema_version": 3,
        "metadata": {},
        "cells": [],
        "comms": [],
    }


def test_new_rejects_bad_ids() -> None:
    with pytest.raises(InvalidArgument, match="notebook_id"):
        NotebookDoc.new("")
    with pytest.raises(InvalidArgument, match="actor_id"):
        NotebookDoc.new("n", actor_id=b"")


def test_add_cell_defaults_and_snapshot(doc: NotebookDoc) -> None:
    cell_id = doc.add_cell()
    cell = doc.get_cell(cell_id)
    assert cell == CellSnapshot(
        id=cell_id,
        cell_type="code",
        position=cell.position if cell else "",
        source="",
        execution_count=None,
        outputs=[],
        metadata={},
    )
    assert len(cell_id) == 32
    assert int(cell_id, 16) >= 0


def test_cells_are_ordered_by_index_and_after(doc: NotebookDoc) -> None:
    first = doc.add_cell(source="1")
    last = doc.add_cell(source="3")
    middle = doc.add_cell(source="2", after=first)
    top = doc.add_cell("markdown", "0", index=0)
    assert doc.cell_ids() == [top, first, middle, last]
    assert [c.source for c in doc.get_cells()] == ["0", "1", "2", "3"]
    positions = [c.position for c in doc.get_cells()]
    assert positions == sorted(positions)


def test_add_cell_with_given_id_metadata_and_type(doc: NotebookDoc) -> None:
    doc.add_cell("raw", "raw text", cell_id="my-cell", metadata={"tags": ["a"], "n": 1.5})
    cell = doc.get_cell("my-cell")
    assert cell is not None
    assert (cell.cell_type, cell.source, cell.metadata) == (
        "raw",
        "raw text",
        {"tags": ["a"], "n": 1.5},
    )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"cell_type": "python"}, InvalidArgument, "cell_type"),
        ({"source": 3}, InvalidArgument, "source"),
        ({"cell_id": ""}, InvalidArgument, "cell_id"),
        ({"cell_id": 7}, InvalidArgument, "cell_id"),
        ({"metadata": []}, InvalidArgument, "metadata"),
        ({"metadata": {"x": {1, 2}}}, InvalidArgument, "set is not a JSON value"),
        ({"metadata": {"x": float("nan")}}, InvalidArgument, "not a JSON number"),
        ({"index": 5}, InvalidArgument, "outside"),
        ({"index": -1}, InvalidArgument, "outside"),
        ({"after": "nope"}, CellNotFound, "nope"),
        ({"index": 0, "after": "x"}, InvalidArgument, "not both"),
    ],
)
def test_add_cell_rejects_bad_input_and_writes_nothing(
    doc: NotebookDoc, kwargs: dict, error: type[Exception], match: str
) -> None:
    heads = doc.get_heads()
    with pytest.raises(error, match=match):
        doc.add_cell(**kwargs)
    assert doc.get_heads() == heads
    assert doc.get_cells() == []


def test_add_cell_rejects_duplicate_id(doc: NotebookDoc) -> None:
    doc.add_cell(cell_id="a", source="keep")
    heads = doc.get_heads()
    with pytest.raises(InvalidArgument, match="already exists"):
        doc.add_cell(cell_id="a", source="clobber")
    assert doc.get_heads() == heads
    assert doc.get_cell("a").source == "keep"  # type: ignore[union-attr]


def test_add_cells_bulk_is_one_change(doc: NotebookDoc) -> None:
    doc.add_cell(cell_id="existing")
    before = len(doc.get_heads())
    ids = doc.add_cells(
        [
            NewCell("markdown", "# title", cell_id="t"),
            NewCell("code", "x = 1", execution_count=4, outputs=[STREAM, HASH]),
            NewCell("raw", "", metadata={"format": "text/plain"}),
        ],
        index=0,
    )
    assert ids[0] == "t"
    assert doc.cell_ids() == [*ids, "existing"]
    code = doc.get_cell(ids[1])
    assert code is not None
    assert (code.execution_count, code.outputs) == (4, [STREAM, HASH])
    assert len(doc.get_heads()) == before == 1
    with pytest.raises(InvalidArgument, match="repeat"):
        doc.add_cells([NewCell(cell_id="z"), NewCell(cell_id="z")])
    with pytest.raises(InvalidArgument, match="NewCell"):
        doc.add_cells([{"cell_type": "code"}])  # type: ignore[list-item]


def test_many_inserts_keep_order(doc: NotebookDoc) -> None:
    expected: list[str] = []
    for n in range(60):
        index = (n * 7) % (len(expected) + 1)
        expected.insert(index, doc.add_cell(source=str(n), index=index))
    assert doc.cell_ids() == expected


def test_delete_cell(doc: NotebookDoc) -> None:
    a = doc.add_cell()
    b = doc.add_cell()
    doc.delete_cell(a)
    assert doc.cell_ids() == [b]
    assert doc.get_cell(a) is None
    with pytest.raises(CellNotFound, match="no cell with id"):
        doc.delete_cell(a)
    with pytest.raises(KeyError):
        doc.delete_cell("never")


def test_move_cell(doc: NotebookDoc) -> None:
    a, b, c = (doc.add_cell(source=s) for s in "abc")
    doc.move_cell(c, index=0)
    assert doc.cell_ids() == [c, a, b]
    doc.move_cell(c, after=b)
    assert doc.cell_ids() == [a, b, c]
    doc.move_cell(a, index=2)
    assert doc.cell_ids() == [b, c, a]
    heads = doc.get_heads()
    doc.move_cell(a, index=2)  # already there
    doc.move_cell(b, index=0)
    assert doc.get_heads() == heads


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({}, InvalidArgument),
        ({"index": 0, "after": "x"}, InvalidArgument),
        ({"index": 3}, InvalidArgument),
        ({"after": "missing"}, CellNotFound),
    ],
)
def test_move_cell_bad_input(doc: NotebookDoc, kwargs: dict, error: type[Exception]) -> None:
    a = doc.add_cell()
    doc.add_cell()
    heads = doc.get_heads()
    with pytest.raises(error):
        doc.move_cell(a, **kwargs)
    with pytest.raises(InvalidArgument, match="itself"):
        doc.move_cell(a, after=a)
    with pytest.raises(CellNotFound):
        doc.move_cell("missing", index=0)
    assert doc.get_heads() == heads


def test_unicode_ids_and_astral_text_round_trip(doc: NotebookDoc) -> None:
    source = "x = '😀 naïve \U0001d518\U0001d52b'\n# 中文 \u200d👩‍👩‍👧\n"
    cell_id = doc.add_cell(source=source, cell_id="célula-🧪")
    assert doc.get_cell(cell_id).source == source  # type: ignore[union-attr]
    # Text indexes are code points: editing right after an emoji lands there exactly.
    assert doc.set_source(cell_id, source.replace("😀", "😀🎉"))
    assert doc.get_cell(cell_id).source == source.replace("😀", "😀🎉")  # type: ignore[union-attr]
    doc.append_source(cell_id, "🐍")
    loaded = NotebookDoc.load(doc.save())
    assert loaded.get_cell(cell_id).source == source.replace("😀", "😀🎉") + "🐍"  # type: ignore[union-attr]


def test_set_source_is_minimal_and_noop_when_unchanged(doc: NotebookDoc) -> None:
    cell_id = doc.add_cell(source="hello world")
    heads = doc.get_heads()
    assert doc.set_source(cell_id, "hello world") is False
    assert doc.get_heads() == heads
    assert doc.set_source(cell_id, "hello brave new world!") is True
    assert doc.get_cell(cell_id).source == "hello brave new world!"  # type: ignore[union-attr]
    assert doc.set_source(cell_id, "") is True
    assert doc.get_cell(cell_id).source == ""  # type: ignore[union-attr]
    with pytest.raises(CellNotFound):
        doc.set_source("missing", "x")
    with pytest.raises(InvalidArgument):
        doc.set_source(cell_id, None)  # type: ignore[arg-type]


def test_append_source(doc: NotebookDoc) -> None:
    cell_id = doc.add_cell(source="a")
    doc.append_source(cell_id, "bc")
    doc.append_source(cell_id, "")
    assert doc.get_cell(cell_id).source == "abc"  # type: ignore[union-attr]
    with pytest.raises(CellNotFound):
        doc.append_source("missing", "x")


def test_large_source_round_trips() -> None:
    source = "".join(f"line {n} ünïcødé 😀\n" for n in range(3000))
    doc = NotebookDoc.new("big")
    cell_id = doc.add_cell(source=source)
    assert NotebookDoc.load(doc.save()).get_cell(cell_id).source == source  # type: ignore[union-attr]
    edited = source[:1000] + "INSERTED" + source[1000:50000] + source[50010:]
    assert doc.set_source(cell_id, edited)
    assert doc.get_cell(cell_id).source == edited  # type: ignore[union-attr]


def test_execution_count(doc: NotebookDoc) -> None:
    cell_id = doc.add_cell()
    assert doc.set_execution_count(cell_id, 5) is True
    heads = doc.get_heads()
    assert doc.set_execution_count(cell_id, 5) is False
    assert doc.get_heads() == heads
    assert doc.get_cell(cell_id).execution_count == 5  # type: ignore[union-attr]
    assert doc.set_execution_count(cell_id, None) is True
    assert doc.get_cell(cell_id).execution_count is None  # type: ignore[union-attr]
    for bad in (-1, True, "3", 1.0):
        with pytest.raises(InvalidArgument, match="execution_count"):
            doc.set_execution_count(cell_id, bad)  # type: ignore[arg-type]
    with pytest.raises(CellNotFound):
        doc.set_execution_count("missing", 1)


def test_outputs(doc: NotebookDoc) -> None:
    cell_id = doc.add_cell()
    assert doc.get_outputs(cell_id) == []
    assert doc.clear_outputs(cell_id) is False
    doc.append_output(cell_id, STREAM)
    doc.append_output(cell_id, HASH)
    assert doc.get_outputs(cell_id) == [STREAM, HASH]
    assert doc.replace_output(cell_id, 1, RESULT) is True
    heads = doc.get_heads()
    assert doc.replace_output(cell_id, 1, RESULT) is False
    assert doc.set_outputs(cell_id, [STREAM, RESULT]) is False
    assert doc.get_heads() == heads
    assert doc.set_outputs(cell_id, [STREAM, RESULT, HASH]) is True
    assert doc.set_outputs(cell_id, [RESULT]) is True
    assert doc.get_outputs(cell_id) == [RESULT]
    assert doc.clear_outputs(cell_id) is True
    assert doc.get_outputs(cell_id) == []


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ("not json", "neither a blob hash nor JSON"),
        ("[1, 2]", "output_type"),
        (json.dumps({"data": {}}), "output_type"),
        ("AB" * 32, "neither"),
        (42, "must be a str"),
    ],
)
def test_bad_outputs_are_rejected(doc: NotebookDoc, bad: object, match: str) -> None:
    cell_id = doc.add_cell()
    doc.append_output(cell_id, STREAM)
    heads = doc.get_heads()
    with pytest.raises(InvalidArgument, match=match):
        doc.append_output(cell_id, bad)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=match):
        doc.set_outputs(cell_id, [STREAM, bad])  # type: ignore[list-item]
    with pytest.raises(InvalidArgument, match=match):
        doc.replace_output(cell_id, 0, bad)  # type: ignore[arg-type]
    assert doc.get_heads() == heads


def test_output_errors(doc: NotebookDoc) -> None:
    cell_id = doc.add_cell()
    with pytest.raises(InvalidArgument, match="no output 0"):
        doc.replace_output(cell_id, 0, STREAM)
    with pytest.raises(InvalidArgument, match="must be a list"):
        doc.set_outputs(cell_id, STREAM)  # type: ignore[arg-type]
    for call in (doc.get_outputs, doc.clear_outputs):
        with pytest.raises(CellNotFound):
            call("missing")


def test_cell_metadata_minimal_updates(doc: NotebookDoc) -> None:
    cell_id = doc.add_cell(metadata={"tags": ["x"], "collapsed": False})
    heads = doc.get_heads()
    assert doc.set_cell_metadata(cell_id, {"tags": ["x"], "collapsed": False}) is False
    assert doc.get_heads() == heads
    assert doc.set_cell_metadata(cell_id, {"tags": ["x", "y"], "jupyter": {"source_hidden": True}})
    assert doc.get_cell(cell_id).metadata == {  # type: ignore[union-attr]
        "tags": ["x", "y"],
        "jupyter": {"source_hidden": True},
    }
    with pytest.raises(InvalidArgument):
        doc.set_cell_metadata(cell_id, {1: "x"})  # type: ignore[dict-item]
    with pytest.raises(CellNotFound):
        doc.set_cell_metadata("missing", {})


def test_execution_status_is_optional_and_read_leniently() -> None:
    from notebook_doc import InvalidArgument, NotebookDoc
    from notebook_doc._automerge import ROOT, ScalarType, transaction

    doc = NotebookDoc.new("status")
    cell = doc.add_cell(source="1")
    assert doc.get_cell(cell).execution_status is None  # absent: a doc written before it
    assert doc.set_execution_status(cell, "queued")
    assert not doc.set_execution_status(cell, "queued")  # unchanged: no new change
    assert doc.get_cell(cell).execution_status == "queued"
    with pytest.raises(InvalidArgument):
        doc.set_execution_status(cell, "finished")
    # Another writer's value this version does not know reads as unknown, not an error.
    cells = doc._doc.get(ROOT, "cells")[1]
    cell_obj = doc._doc.get(cells, cell)[1]
    with transaction(doc._doc) as tx:
        tx.put(cell_obj, "execution_status", ScalarType.Str, "paused")
    assert doc.validate() == []
    assert doc.get_cell(cell).execution_status is None
    assert doc.set_execution_status(cell, None)
    assert "execution_status" not in doc._doc.keys(cell_obj)
