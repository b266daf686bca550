"""Sync and merge between real documents: convergence, late joiners, concurrent edits."""

from __future__ import annotations

import os

import pytest
from nbdoc_helpers import sync

from notebook_doc import InvalidArgument, NotebookDoc, SchemaError, SyncMessageError, SyncState


def populated() -> NotebookDoc:
    doc = NotebookDoc.new("shared", actor_id=b"\xaa" * 16)
    first = doc.add_cell(source="import math\n", cell_id="first")
    doc.add_cell("markdown", "# Notes 😀", after=first)
    doc.put_comm("w", "jupyter.widget", "m", "IntSliderModel", '{"value": 3}', 0)
    doc.update_metadata("language_info", {"name": "python"})
    return doc


def test_two_docs_converge_through_sync_messages() -> None:
    server = populated()
    client = NotebookDoc.empty(actor_id=b"\xbb" * 16)
    sync(server, client)
    assert client.to_json() == server.to_json()
    assert client.get_heads() == server.get_heads()
    # Edits on both sides flow both ways on the same sync states.
    client.set_source("first", "import math, os\n")
    server.update_comm_state("w", '{"value": 4}')
    sync(server, client)
    assert client.to_json() == server.to_json()
    assert server.get_cell("first").source == "import math, os\n"  # type: ignore[union-attr]
    assert client.get_comm("w").state == {"value": 4}  # type: ignore[union-attr]


def test_late_joiner_bootstraps_from_save_then_syncs() -> None:
    server = populated()
    early = NotebookDoc.empty()
    sync(server, early)
    for n in range(20):
        server.update_comm_state("w", f'{{"value": {n}}}')
    late = NotebookDoc.load(server.save())  # the SNAPSHOT frame
    assert sync(server, late) <= 2  # nothing to catch up on beyond the handshake
    late_from_scratch = NotebookDoc.empty()
    sync(server, late_from_scratch)
    sync(server, early)
    assert late.to_json() == late_from_scratch.to_json() == early.to_json() == server.to_json()


def test_empty_doc_fills_by_sync() -> None:
    client = NotebookDoc.empty()
    with pytest.raises(SchemaError, match=r"root\.notebook_id is missing"):
        _ = client.notebook_id
    # Before the first sync it reads as an empty notebook.
    assert client.get_cells() == client.get_comms() == client.cell_ids() == []
    assert client.get_metadata() == {}
    assert client.get_cell("x") is client.get_comm("x") is client.get_comm_state_json("x") is None
    assert client.to_json() == {
        "notebook_id": None,
        "schema_version": None,
        "metadata": {},
        "cells": [],
        "comms": [],
    }
    with pytest.raises(SchemaError, match=r"root\.cells is missing"):
        client.add_cell()
    assert "root.cells is missing" in client.validate()
    sync(populated(), client)
    assert client.notebook_id == "shared"
    assert client.validate() == []


def test_skeletons_built_on_both_sides_conflict() -> None:
    """Why `empty` exists: two `new` docs each create `cells`, and one hides the other."""
    server = populated()
    client = NotebookDoc.new("shared", actor_id=b"\xff" * 16)
    sync(server, client)
    assert server.get_cells() == []


def test_generate_returns_none_when_peer_is_current() -> None:
    server = populated()
    client = NotebookDoc.load(server.save())
    sync(server, client)
    state = SyncState()
    first = server.generate_sync_message(state)
    assert isinstance(first, bytes)
    reply_state = SyncState()
    assert client.receive_sync_message(reply_state, first) is False  # nothing new for client
    reply = client.generate_sync_message(reply_state)
    assert reply is not None
    assert server.receive_sync_message(state, reply) is False
    assert server.generate_sync_message(state) is None


@pytest.mark.parametrize(
    "data",
    [b"", b"\x42", b"garbage", os.urandom(100)],
    ids=["empty", "type-only", "text", "random"],
)
def test_undecodable_sync_message(data: bytes) -> None:
    doc = populated()
    before = doc.to_json()
    heads = doc.get_heads()
    with pytest.raises(SyncMessageError, match="sync message"):
        doc.receive_sync_message(SyncState(), data)
    assert doc.get_heads() == heads
    assert doc.to_json() == before


def test_sync_rejects_wrong_argument_types() -> None:
    doc = populated()
    with pytest.raises(SyncMessageError, match="bytes"):
        doc.receive_sync_message(SyncState(), "text")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="SyncState"):
        doc.generate_sync_message(object())  # type: ignore[arg-type]


def test_concurrent_source_edits_both_survive_a_merge() -> None:
    base = NotebookDoc.new("nb", actor_id=b"\x01" * 16)
    cell = base.add_cell(source="def f(x):\n    return x\n\nprint(f(1))\n")
    alice = base.fork(actor_id=b"\x02" * 16)
    bob = base.fork(actor_id=b"\x03" * 16)
    assert alice.set_source(cell, "def f(x):\n    return x * 2\n\nprint(f(1))\n")
    assert bob.set_source(cell, "def f(x):\n    return x\n\nprint(f(1), f(2))\n")
    alice.merge(bob)
    bob.merge(alice)
    expected = "def f(x):\n    return x * 2\n\nprint(f(1), f(2))\n"
    assert alice.get_cell(cell).source == expected  # type: ignore[union-attr]
    assert bob.to_json() == alice.to_json()


def test_concurrent_inserts_at_the_same_place_keep_a_total_order() -> None:
    base = NotebookDoc.new("nb")
    a = base.add_cell(cell_id="a")
    left, right = base.fork(), base.fork()
    x = left.add_cell(cell_id="x", after=a)
    y = right.add_cell(cell_id="y", after=a)
    left.merge(right)
    right.merge(left)
    assert left.cell_ids() == right.cell_ids() == [a, x, y]  # same position: ordered by id
    # Inserting between the tied cells still works (positions are renumbered).
    z = left.add_cell(cell_id="z", after=x)
    assert left.cell_ids() == [a, x, z, y]
    assert left.validate() == []


def test_fork_gets_its_own_actor_and_merge_type_checks() -> None:
    doc = populated()
    assert doc.fork().actor_id != doc.actor_id
    assert doc.fork(actor_id=b"\x09" * 4).actor_id == b"\x09" * 4
    with pytest.raises(InvalidArgument, match="NotebookDoc"):
        doc.merge(doc.save())  # type: ignore[arg-type]
