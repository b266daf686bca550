"""Compaction as pure data: a fresh doc holds exactly the content, and a change's effect
carried into a doc with another history reaches the same content."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notebook_doc import NotebookDoc, SyncMessageError
from notebook_doc.compaction import Content, build_fresh, carry, read_content, rebase_text
from tests.notebook_doc.test_properties import apply_edit, edits

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def with_fresh_copy(doc: NotebookDoc) -> tuple[Content, NotebookDoc]:
    """The doc's content now, and a fresh doc built from it."""
    content = read_content(doc)
    return content, build_fresh(content)


def edited_doc(data: st.DataObject, count: int = 12) -> NotebookDoc:
    doc = NotebookDoc.new("nb", actor_id=b"\x01" * 16)
    doc.update_metadata("kernelspec", {"name": "python3"})
    for _ in range(3):
        doc.add_cell(source="base 😀\n", metadata={"tags": ["x"]})
    for edit in data.draw(st.lists(edits, max_size=count)):
        apply_edit(doc, edit, data)
    return doc


@SETTINGS
@given(data=st.data())
def test_a_fresh_doc_holds_exactly_the_content_and_little_history(data: st.DataObject) -> None:
    doc = edited_doc(data, 25)
    content, fresh = with_fresh_copy(doc)
    assert fresh.to_json() == doc.to_json()
    assert read_content(fresh) == content  # comm states byte for byte, positions, seq
    assert fresh.validate() == []
    assert NotebookDoc.load(fresh.save()).to_json() == doc.to_json()
    assert fresh.change_count() <= len(content.cells) + 3


@SETTINGS
@given(data=st.data())
def test_carrying_an_edit_into_a_fresh_doc_reaches_the_edited_content(
    data: st.DataObject,
) -> None:
    doc = edited_doc(data)
    before, fresh = with_fresh_copy(doc)
    for edit in data.draw(st.lists(edits, min_size=1, max_size=8)):
        apply_edit(doc, edit, data)
    carry(fresh, before, read_content(doc), comms=True)
    assert fresh.to_json() == doc.to_json()


@SETTINGS
@given(data=st.data())
def test_comms_are_carried_only_when_asked(data: st.DataObject) -> None:
    doc = edited_doc(data, 0)
    before, fresh = with_fresh_copy(doc)
    doc.put_comm("w9", "jupyter.widget", "m", "n", json.dumps({"value": 1}), 9)
    assert carry(fresh, before, read_content(doc)) is False
    assert fresh.get_comm("w9") is None


def test_a_late_edit_to_a_cell_deleted_meanwhile_is_dropped_with_it() -> None:
    doc = NotebookDoc.new("nb")
    cell = doc.add_cell(source="x")
    before, fresh = with_fresh_copy(doc)
    fresh.delete_cell(cell)
    doc.set_source(cell, "x edited")
    assert carry(fresh, before, read_content(doc)) is False
    assert fresh.cell_ids() == []


def test_metadata_keys_changed_meanwhile_are_kept() -> None:
    doc = NotebookDoc.new("nb")
    doc.set_metadata({"a": 1, "b": 1})
    before, fresh = with_fresh_copy(doc)
    fresh.update_metadata("b", 2)  # the new epoch moved on
    doc.update_metadata("a", 5)  # the late change
    carry(fresh, before, read_content(doc))
    assert fresh.get_metadata() == {"a": 5, "b": 2}


text = st.text(alphabet="ab\n😀", max_size=12)


@SETTINGS
@given(base=text, edited=text)
def test_rebase_onto_an_unmoved_target_is_the_edit(base: str, edited: str) -> None:
    assert rebase_text(base, edited, base) == edited
    assert rebase_text(base, base, edited) == edited


@SETTINGS
@given(left=text, right=text, new_left=text, new_right=text)
def test_edits_on_either_side_of_a_shared_anchor_both_survive(
    left: str, right: str, new_left: str, new_right: str
) -> None:
    base = f"{left}|{right}"
    assert rebase_text(base, f"{new_left}|{right}", f"{left}|{new_right}") == (
        f"{new_left}|{new_right}"
    )


@SETTINGS
@given(data=st.data())
def test_changes_since_common_heads_bring_a_peer_up_to_date(data: st.DataObject) -> None:
    daemon = edited_doc(data, 4)
    peer = daemon.fork(actor_id=b"\x02" * 16)
    heads = daemon.get_heads()
    for edit in data.draw(st.lists(edits, min_size=1, max_size=6)):
        apply_edit(peer, edit, data)
    unknown = b"\xff" * 32  # hashes a peer does not have are ignored
    assert daemon.apply_changes(peer.get_changes_since([*heads, unknown])) is (
        peer.get_heads() != heads
    )
    assert daemon.to_json() == peer.to_json()
    assert daemon.apply_changes(peer.get_changes_since(heads)) is False  # nothing new


def test_bytes_that_are_not_changes_are_refused() -> None:
    doc = NotebookDoc.new("nb")
    heads = doc.get_heads()
    with pytest.raises(SyncMessageError):
        doc.apply_changes([b"not a change"])
    assert doc.get_heads() == heads


def test_has_change() -> None:
    doc = NotebookDoc.new("nb")
    other = NotebookDoc.new("nb")
    assert doc.has_change(doc.get_heads()[0])
    assert not doc.has_change(other.get_heads()[0])
