"""The reconcile plan as pure logic: what to add, update and remove, and in what order."""

from __future__ import annotations

import pytest

from runtimed.comms.comm_state import CommEntry
from runtimed.comms.reconcile import KernelWidget, opening_order, parse_update_states, plan


def entry(comm_id: str, state: dict, target: str = "jupyter.widget", seq: int = 0) -> CommEntry:
    return CommEntry(comm_id, target, "", "", state, seq=seq)


def test_nothing_differs_gives_an_empty_plan() -> None:
    live = [entry("a", {"value": 1})]
    assert not plan(live, [KernelWidget("a", {"value": 1}, {})])


def test_added_updated_removed_and_other_targets_left_alone() -> None:
    live = [
        entry("same", {"v": 1}),
        entry("stale", {"v": 1}),
        entry("gone", {"v": 1}),
        entry("custom", {"x": 1}, target="my.target"),
    ]
    kernel = [
        KernelWidget("same", {"v": 1}, {}),
        KernelWidget("stale", {"v": 2}, {}),
        KernelWidget("new", {"v": 3}, {}),
    ]
    result = plan(live, kernel)
    assert [w.comm_id for w in result.added] == ["new"]
    assert [w.comm_id for w in result.updated] == ["stale"]
    assert result.removed == ["gone"]
    assert result.summary() == {"added": 1, "updated": 1, "removed": 1}


def test_a_changed_buffer_is_an_update() -> None:
    live = [entry("img", {"format": "png"})]
    live[0].buffers = {("value",): b"old"}
    result = plan(live, [KernelWidget("img", {"format": "png"}, {("value",): b"new"})])
    assert [w.comm_id for w in result.updated] == ["img"]


def test_children_open_before_their_parents() -> None:
    widgets = [
        KernelWidget("box", {"children": ["IPY_MODEL_a", "IPY_MODEL_inner"]}, {}),
        KernelWidget("inner", {"children": ["IPY_MODEL_b"], "layout": "IPY_MODEL_lay"}, {}),
        KernelWidget("a", {}, {}),
        KernelWidget("b", {}, {}),
        KernelWidget("lay", {}, {}),
    ]
    order = [w.comm_id for w in opening_order(widgets)]
    for parent, child in [("box", "a"), ("box", "inner"), ("inner", "b"), ("inner", "lay")]:
        assert order.index(child) < order.index(parent)
    assert sorted(order) == sorted(w.comm_id for w in widgets)


def test_reference_cycles_do_not_loop() -> None:
    widgets = [
        KernelWidget("x", {"r": "IPY_MODEL_y"}, {}),
        KernelWidget("y", {"r": "IPY_MODEL_x"}, {}),
    ]
    assert sorted(w.comm_id for w in opening_order(widgets)) == ["x", "y"]


def test_update_states_buffers_land_at_their_widget_paths() -> None:
    data = {
        "method": "update_states",
        "states": {"img": {"model_name": "ImageModel", "state": {"format": "png"}}},
        "buffer_paths": [["img", "state", "value"]],
    }
    [widget] = parse_update_states(data, [b"\x89PNG"])
    assert widget.buffers == {("value",): b"\x89PNG"}
    assert widget.state == {"format": "png"}


@pytest.mark.parametrize(
    ("data", "buffers"),
    [
        ({"states": []}, []),
        ({"states": {}, "buffer_paths": [["a", "state", "v"]]}, []),
        ({"states": {"a": {"state": 1}}}, []),
        ({"states": {"a": {"state": {}}}, "buffer_paths": [["a", "value"]]}, [b"x"]),
    ],
)
def test_malformed_update_states_is_refused(data: dict, buffers: list[bytes]) -> None:
    with pytest.raises(ValueError, match="update_states"):
        parse_update_states(data, buffers)
