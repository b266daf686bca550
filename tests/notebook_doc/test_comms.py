"""Comms: the exact API of docs/schema.md, batching, no-op writes and bad input."""

from __future__ import annotations

import json

import pytest
from automerge.core import Document

from notebook_doc import (
    CommSnapshot,
    InvalidArgument,
    NotebookDoc,
    PutComm,
    RemoveComm,
    SetCommOutputs,
    UpdateCommState,
)

SLIDER = {"_model_name": "IntSliderModel", "_model_module": "@jupyter-widgets/controls", "value": 1}
HASH_A = "a" * 64
HASH_B = "0123456789abcdef" * 4


def put_slider(doc: NotebookDoc, comm_id: str = "w1", seq: int = 0, value: int = 1) -> None:
    state = json.dumps({**SLIDER, "value": value})
    doc.put_comm(
        comm_id, "jupyter.widget", "@jupyter-widgets/controls", "IntSliderModel", state, seq
    )


def test_put_and_get_comm(doc: NotebookDoc) -> None:
    put_slider(doc)
    expected = CommSnapshot(
        comm_id="w1",
        target_name="jupyter.widget",
        model_module="@jupyter-widgets/controls",
        model_name="IntSliderModel",
        state=SLIDER,
        outputs=[],
        seq=0,
    )
    assert doc.get_comm("w1") == expected
    assert doc.get_comms() == [expected]
    assert doc.get_comm("missing") is None
    assert doc.get_comm_state_json("w1") == json.dumps(SLIDER)
    assert doc.get_comm_state_json("missing") is None
    assert NotebookDoc.load(doc.save()).get_comm("w1") == expected
    assert doc.has_comm("w1")
    assert not doc.has_comm("missing")
    doc.remove_comm("w1")
    assert not doc.has_comm("w1")


def test_get_comms_sorted_by_seq(doc: NotebookDoc) -> None:
    for comm_id, seq in (("c", 2), ("a", 10), ("b", 0), ("😀-widget", 5)):
        put_slider(doc, comm_id, seq)
    assert [c.comm_id for c in doc.get_comms()] == ["b", "c", "😀-widget", "a"]


def test_put_comm_identical_is_noop_and_reopen_replaces(doc: NotebookDoc) -> None:
    put_slider(doc)
    doc.append_comm_output("w1", HASH_A)
    put_slider(doc, value=7)  # reopen: whole entry replaced, outputs empty again
    assert doc.get_comm("w1").state["value"] == 7  # type: ignore[union-attr]
    assert doc.get_comm("w1").outputs == []  # type: ignore[union-attr]
    heads = doc.get_heads()
    put_slider(doc, value=7)
    assert doc.get_heads() == heads


def test_update_comm_state(doc: NotebookDoc) -> None:
    assert doc.update_comm_state("w1", "{}") is False
    put_slider(doc)
    heads = doc.get_heads()
    assert doc.update_comm_state("w1", json.dumps(SLIDER)) is True  # exists; nothing to write
    assert doc.get_heads() == heads
    assert doc.update_comm_state("w1", json.dumps({**SLIDER, "value": 2})) is True
    assert doc.get_heads() != heads
    assert doc.get_comm("w1").state["value"] == 2  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("state_json", "match"),
    [
        ("not json", "not valid JSON"),
        ("[1]", "not an object"),
        ('{"v": NaN}', "NaN is not valid JSON"),
        (b"{}", "must be a str"),
    ],
)
def test_bad_state_json_is_rejected(doc: NotebookDoc, state_json: object, match: str) -> None:
    put_slider(doc)
    heads = doc.get_heads()
    with pytest.raises(InvalidArgument, match=match):
        doc.update_comm_state("w1", state_json)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match=match):
        doc.put_comm("w2", "t", "m", "n", state_json, 1)  # type: ignore[arg-type]
    assert doc.get_heads() == heads


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (("", "t", "m", "n", "{}", 0), "comm_id"),
        (("c", None, "m", "n", "{}", 0), "target_name"),
        (("c", "t", 1, "n", "{}", 0), "model_module"),
        (("c", "t", "m", "n", "{}", -1), "seq"),
        (("c", "t", "m", "n", "{}", 2**64), "seq"),
        (("c", "t", "m", "n", "{}", True), "seq"),
    ],
)
def test_put_comm_bad_fields(doc: NotebookDoc, args: tuple, match: str) -> None:
    heads = doc.get_heads()
    with pytest.raises(InvalidArgument, match=match):
        doc.put_comm(*args)
    assert doc.get_heads() == heads


def test_seq_up_to_u64(doc: NotebookDoc) -> None:
    doc.put_comm("c", "", "", "", "{}", 2**64 - 1)
    assert NotebookDoc.load(doc.save()).get_comm("c").seq == 2**64 - 1  # type: ignore[union-attr]


def test_remove_and_clear_comms(doc: NotebookDoc) -> None:
    assert doc.remove_comm("w1") is False
    assert doc.clear_comms() is False
    put_slider(doc, "w1", 0)
    put_slider(doc, "w2", 1)
    assert doc.remove_comm("w1") is True
    assert [c.comm_id for c in doc.get_comms()] == ["w2"]
    assert doc.clear_comms() is True
    heads = doc.get_heads()
    assert doc.clear_comms() is False
    assert doc.get_heads() == heads
    assert doc.get_comms() == []


def test_comm_outputs(doc: NotebookDoc) -> None:
    assert doc.append_comm_output("out", HASH_A) is False
    assert doc.clear_comm_outputs("out") is False
    doc.put_comm("out", "jupyter.widget", "@jupyter-widgets/output", "OutputModel", "{}", 0)
    assert doc.clear_comm_outputs("out") is False
    assert doc.append_comm_output("out", HASH_A) is True
    assert doc.append_comm_output("out", HASH_B) is True
    assert doc.get_comm("out").outputs == [HASH_A, HASH_B]  # type: ignore[union-attr]
    assert doc.clear_comm_outputs("out") is True
    assert doc.get_comm("out").outputs == []  # type: ignore[union-attr]
    heads = doc.get_heads()
    for bad in ('{"output_type": "stream"}', "A" * 64, "a" * 63, None):
        with pytest.raises(InvalidArgument, match="blob hash"):
            doc.append_comm_output("out", bad)  # type: ignore[arg-type]
    assert doc.get_heads() == heads


def test_set_comm_outputs_rewrites_only_what_differs(doc: NotebookDoc) -> None:
    assert doc.set_comm_outputs("out", [HASH_A]) is False  # no such comm
    doc.put_comm("out", "jupyter.widget", "@jupyter-widgets/output", "OutputModel", "{}", 0)
    assert doc.set_comm_outputs("out", [HASH_A, HASH_B]) is True
    heads = doc.get_heads()
    assert doc.set_comm_outputs("out", [HASH_A, HASH_B]) is False
    assert doc.get_heads() == heads
    assert doc.set_comm_outputs("out", [HASH_B]) is True
    assert doc.get_comm("out").outputs == [HASH_B]  # type: ignore[union-attr]
    with pytest.raises(InvalidArgument, match="blob hash"):
        doc.set_comm_outputs("out", ["not a hash"])
    # In a batch: a reopened Output widget gets its outputs in the same change.
    doc.apply_comm_writes(
        [
            PutComm("out", "jupyter.widget", "@jupyter-widgets/output", "OutputModel", "{}", 1),
            SetCommOutputs("out", (HASH_A,)),
        ]
    )
    assert doc.get_comm("out").outputs == [HASH_A]  # type: ignore[union-attr]


def test_apply_comm_writes_is_one_change(doc: NotebookDoc) -> None:
    put_slider(doc, "old", 0)
    before = doc.save()
    changed = doc.apply_comm_writes(
        [
            PutComm("w1", "jupyter.widget", "m", "IntSliderModel", '{"value": 1}', 1),
            *(UpdateCommState("w1", json.dumps({"value": n})) for n in range(2, 50)),
            RemoveComm("old"),
            UpdateCommState("ghost", "{}"),  # no such comm: skipped
            RemoveComm("ghost"),
        ]
    )
    assert changed is True
    assert [c.comm_id for c in doc.get_comms()] == ["w1"]
    assert doc.get_comm("w1").state == {"value": 49}  # type: ignore[union-attr]
    # Exactly one new change on top of the previous state.
    old, new = Document.load(before), Document.load(doc.save())
    assert len(new.get_changes([])) == len(old.get_changes([])) + 1


def test_apply_comm_writes_noop_and_empty(doc: NotebookDoc) -> None:
    put_slider(doc)
    heads = doc.get_heads()
    assert doc.apply_comm_writes([]) is False
    assert doc.apply_comm_writes([UpdateCommState("w1", json.dumps(SLIDER))]) is False
    assert doc.apply_comm_writes([RemoveComm("ghost")]) is False
    assert doc.get_heads() == heads


def test_apply_comm_writes_bad_write_rolls_back_the_batch(doc: NotebookDoc) -> None:
    put_slider(doc)
    heads = doc.get_heads()
    with pytest.raises(InvalidArgument, match="not valid JSON"):
        doc.apply_comm_writes([UpdateCommState("w1", '{"value": 99}'), UpdateCommState("w1", "{")])
    with pytest.raises(InvalidArgument, match="is not a comm write"):
        doc.apply_comm_writes([RemoveComm("w1"), ("w1", "{}")])  # type: ignore[list-item]
    assert doc.get_heads() == heads
    assert doc.get_comm("w1").state == SLIDER  # type: ignore[union-attr]


def test_one_megabyte_state(doc: NotebookDoc) -> None:
    state = json.dumps({"value": "x" * 1_000_000, "emoji": "😀" * 1000})
    doc.put_comm("big", "jupyter.widget", "m", "n", state, 0)
    heads = doc.get_heads()
    assert doc.update_comm_state("big", state) is True
    assert doc.get_heads() == heads
    loaded = NotebookDoc.load(doc.save())
    assert loaded.get_comm_state_json("big") == state
    assert loaded.get_comm("big").state["emoji"] == "😀" * 1000  # type: ignore[union-attr]
