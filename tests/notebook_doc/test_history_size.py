"""What a history holds, the daemon's snapshot loaded unchecked, and comms read in bulk."""

from __future__ import annotations

import json

import pytest
from automerge.core import ROOT, ScalarType
from nbdoc_helpers import push_raw, raw_copy

from notebook_doc import NotebookDoc, SchemaError
from notebook_doc.compaction import build_fresh, read_content

STATE = json.dumps({"value": 0, "description": "x" * 500})


def widgets(doc: NotebookDoc, count: int) -> list[str]:
    ids = [f"w{i}" for i in range(count)]
    for seq, comm_id in enumerate(ids):
        doc.put_comm(comm_id, "jupyter.widget", "m", "IntSliderModel", STATE, seq)
    return ids


def test_each_overwritten_state_stays_in_the_history_until_a_fresh_doc(doc: NotebookDoc) -> None:
    ids = widgets(doc, 10)
    start = doc.history_size([])
    heads = doc.get_heads()
    for value in range(1, 21):
        for comm_id in ids:
            doc.update_comm_state(comm_id, json.dumps({"value": value, "description": "x" * 500}))
    grown = doc.history_size(heads)
    assert grown >= 200 * len(STATE)  # every overwritten string, uncompressed
    assert doc.history_size([]) == start + grown
    assert doc.history_size(doc.get_heads()) == 0
    fresh = build_fresh(read_content(doc))
    assert fresh.history_size([]) < start * 1.5  # the content alone
    assert len(doc.save()) < grown / 10  # while the saved file compresses them away


def test_a_snapshot_loaded_unchecked_skips_validation_but_reads_strictly(
    doc: NotebookDoc,
) -> None:
    widgets(doc, 2)
    raw = raw_copy(doc)
    with raw.transaction() as tx:
        comms = raw.get(ROOT, "comms")[1]
        comm = raw.get(comms, "w1")[1]
        tx.put(comm, "seq", ScalarType.Str, "not a number")
    push_raw(raw, doc)
    data = doc.save()
    with pytest.raises(SchemaError, match=r"comms\['w1'\]\.seq is a Str, not a Uint"):
        NotebookDoc.load(data)
    loaded = NotebookDoc.load(data, check=False)
    assert loaded.get_raw_comm("w0") is not None
    with pytest.raises(SchemaError, match=r"comms\['w1'\]\.seq is a Str, not a Uint"):
        loaded.get_raw_comm("w1")
