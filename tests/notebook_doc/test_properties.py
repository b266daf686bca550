"""Property tests: exact JSON round-trips, positions, text diffs, and convergence of forks."""

from __future__ import annotations

import itertools
import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from notebook_doc import InvalidArgument, NotebookDoc
from notebook_doc.positions import is_valid_position, key_between, keys_between

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(min_size=1), children, max_size=4)
    ),
    max_leaves=20,
)


def same(a: Any, b: Any) -> bool:
    """Equality that also tells types (1 vs 1.0 vs True) and the sign of zero apart."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    return type(a) is type(b) and a == b


@SETTINGS
@given(value=json_values)
def test_json_round_trips_exactly_through_metadata(value: Any) -> None:
    doc = NotebookDoc.new("nb")
    doc.update_metadata("value", value)
    assert same(doc.get_metadata()["value"], value)
    assert same(NotebookDoc.load(doc.save()).get_metadata()["value"], value)
    heads = doc.get_heads()
    assert doc.update_metadata("value", value) is False
    assert doc.get_heads() == heads


@pytest.mark.parametrize("value", [2**64, -(2**63) - 1, float("inf"), b"bytes", (1, 2), "\ud800"])
def test_non_json_values_are_rejected(value: object) -> None:
    doc = NotebookDoc.new("nb")
    heads = doc.get_heads()
    with pytest.raises(InvalidArgument):
        doc.update_metadata("value", {"nested": [value]})
    assert doc.get_heads() == heads


@pytest.mark.parametrize("key", ["", "\udc80", 1, None])
def test_unstorable_keys_are_rejected(key: object) -> None:
    doc = NotebookDoc.new("nb")
    heads = doc.get_heads()
    with pytest.raises(InvalidArgument, match="key"):
        doc.set_metadata({"ok": 1, "nested": {key: 1}})
    assert doc.get_heads() == heads
    assert doc.get_metadata() == {}


def test_type_changes_are_writes() -> None:
    doc = NotebookDoc.new("nb")
    doc.update_metadata("v", 1)
    for value in (1.0, True, "1", -0.0, [1], {"a": 1}, 0.0):
        assert doc.update_metadata("v", value) is True
        assert same(doc.get_metadata()["v"], value)
    heads = doc.get_heads()
    assert doc.update_metadata("v", -0.0) is False  # Automerge treats the zeros as equal
    assert doc.get_heads() == heads


positions = st.from_regex(r"[0-9a-f]{0,6}[1-9a-f]", fullmatch=True)


@SETTINGS
@given(a=positions, b=positions)
def test_key_between_is_strictly_between(a: str, b: str) -> None:
    low, high = sorted((a, b))
    for before, after in ((low, high), (None, low), (high, None)):
        if before is not None and before == after:
            continue
        key = key_between(before, after)
        assert is_valid_position(key)
        assert before is None or before < key
        assert after is None or key < after


@SETTINGS
@given(a=positions, b=positions, count=st.integers(0, 50))
def test_keys_between_are_ordered_and_distinct(a: str, b: str, count: int) -> None:
    low, high = sorted((a, b))
    if low == high:
        high = None  # type: ignore[assignment]
    keys = keys_between(low, high, count)
    assert keys == sorted(set(keys))
    assert len(keys) == count
    assert all(low < key and (high is None or key < high) for key in keys)


@SETTINGS
@given(old=st.text(max_size=60), new=st.text(max_size=60))
def test_set_source_reaches_any_text(old: str, new: str) -> None:
    doc = NotebookDoc.new("nb")
    cell = doc.add_cell(source=old)
    assert doc.set_source(cell, new) is (old != new)
    assert doc.get_cell(cell).source == new  # type: ignore[union-attr]
    assert NotebookDoc.load(doc.save()).get_cell(cell).source == new  # type: ignore[union-attr]


STREAM = json.dumps({"output_type": "stream", "name": "stdout", "text": "x"})
edits = st.sampled_from(
    ["add", "delete", "move", "source", "append", "outputs", "count", "meta", "comm", "uncomm"]
)


def apply_edit(doc: NotebookDoc, edit: str, data: st.DataObject) -> None:
    ids = doc.cell_ids()
    pick = (lambda: data.draw(st.sampled_from(ids))) if ids else None
    text = st.text(alphabet="ab😀\n", max_size=6)
    if edit == "add" or pick is None:
        doc.add_cell(source=data.draw(text), index=data.draw(st.integers(0, len(ids))))
    elif edit == "delete":
        doc.delete_cell(pick())
    elif edit == "move":
        doc.move_cell(pick(), index=data.draw(st.integers(0, len(ids) - 1)))
    elif edit == "source":
        cell = pick()
        old = doc.get_cell(cell).source  # type: ignore[union-attr]
        cut = data.draw(st.integers(0, len(old)))
        doc.set_source(cell, old[:cut] + data.draw(text) + old[cut + 1 :])
    elif edit == "append":
        doc.append_source(pick(), data.draw(text))
    elif edit == "outputs":
        doc.set_outputs(pick(), [STREAM] * data.draw(st.integers(0, 2)))
    elif edit == "count":
        doc.set_execution_count(pick(), data.draw(st.none() | st.integers(0, 9)))
    elif edit == "meta":
        doc.update_metadata(data.draw(st.sampled_from("xyz")), data.draw(json_scalars))
    elif edit == "comm":
        comm_id = data.draw(st.sampled_from(["w1", "w2"]))
        state = json.dumps({"value": data.draw(st.integers(0, 9))})
        if doc.update_comm_state(comm_id, state) is False:
            doc.put_comm(comm_id, "jupyter.widget", "m", "n", state, data.draw(st.integers(0, 5)))
    else:
        doc.remove_comm(data.draw(st.sampled_from(["w1", "w2"])))


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), forks=st.integers(2, 3))
def test_random_edits_on_forks_converge_in_any_merge_order(data: st.DataObject, forks: int) -> None:
    base = NotebookDoc.new("nb", actor_id=b"\x00" * 16)
    for _ in range(3):
        base.add_cell(source="base 😀\n")
    peers = [base.fork(actor_id=bytes([n + 1]) * 16) for n in range(forks)]
    for peer in peers:
        for edit in data.draw(st.lists(edits, max_size=6)):
            apply_edit(peer, edit, data)
    results = []
    for order in itertools.permutations(range(forks)):
        merged = base.fork()
        for index in order:
            merged.merge(peers[index])
        assert merged.validate() == []
        results.append(merged.to_json())
    assert all(result == results[0] for result in results)
