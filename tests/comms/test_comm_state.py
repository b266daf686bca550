"""CommState: the legacy in-memory comm view (pure, no kernel)."""

from __future__ import annotations

import base64

import pytest
from structlog.testing import capture_logs

from runtimed.comms.comm_state import (
    CommMessageError,
    CommState,
    parse_comm_close,
    parse_comm_open,
    parse_comm_update,
    to_wire,
)


def slider_data(**state: object) -> dict:
    base = {"_model_module": "@jupyter-widgets/controls", "_model_name": "IntSliderModel"}
    return {"state": base | state, "buffer_paths": []}


def output_data(msg_id: str = "") -> dict:
    state = {"_model_module": "@jupyter-widgets/output", "_model_name": "OutputModel"}
    return {"state": state | {"msg_id": msg_id}}


# ---------------------------------------------------------------------- open / close


def test_open_records_model_names_and_counts_seq_from_zero() -> None:
    comms = CommState()
    first = comms.on_comm_open("a", "jupyter.widget", slider_data(value=1))
    second = comms.on_comm_open("b", "jupyter.widget", {})

    assert (first.seq, second.seq) == (0, 1)
    assert (first.model_module, first.model_name) == ("@jupyter-widgets/controls", "IntSliderModel")
    assert first.state["value"] == 1
    assert (second.model_module, second.model_name, second.state) == ("", "", {})
    assert len(comms) == 2
    assert "a" in comms
    assert "zzz" not in comms


def test_a_state_that_is_not_an_object_opens_empty() -> None:
    assert CommState().on_comm_open("a", "t", {"state": [1, 2]}).state == {}


def test_reopening_a_live_id_replaces_it_with_a_new_seq() -> None:
    comms = CommState()
    comms.on_comm_open("a", "t", slider_data(value=1))
    comms.on_comm_open("b", "t", slider_data())
    reopened = comms.on_comm_open("a", "t", slider_data(value=9))

    assert reopened.seq == 2
    assert [e.comm_id for e in comms.get_all()] == ["b", "a"]
    assert comms.get("a") is reopened
    assert reopened.state["value"] == 9


def test_open_copies_the_state_it_is_given() -> None:
    data = slider_data(value=1)
    comms = CommState()
    comms.on_comm_open("a", "t", data)
    comms.on_comm_update("a", {"value": 2})
    assert data["state"]["value"] == 1


def test_close_and_clear() -> None:
    comms = CommState()
    comms.on_comm_open("a", "t", slider_data())
    comms.on_comm_open("b", "t", slider_data())

    closed = comms.on_comm_close("a")
    assert closed is not None
    assert closed.comm_id == "a"
    assert comms.on_comm_close("a") is None
    assert comms.get("a") is None

    comms.clear()
    assert len(comms) == 0
    assert comms.get_all() == []
    assert comms.on_comm_open("c", "t", {}).seq == 0


# ---------------------------------------------------------------------- updates


def test_update_merges_top_level_keys_shallowly() -> None:
    comms = CommState()
    comms.on_comm_open("a", "t", slider_data(value=1, layout={"width": "1px", "height": "2px"}))
    entry = comms.on_comm_update("a", {"value": 5, "layout": {"width": "9px"}})

    assert entry is not None
    assert entry.state["value"] == 5
    assert entry.state["layout"] == {"width": "9px"}  # replaced whole, not deep-merged
    assert entry.state["_model_name"] == "IntSliderModel"
    assert entry.seq == 0


def test_an_update_for_an_unknown_comm_is_logged_and_ignored() -> None:
    comms = CommState()
    with capture_logs() as logs:
        assert comms.on_comm_update("ghost", {"value": 1}) is None
    assert logs[0]["comm_id"] == "ghost"
    assert len(comms) == 0


def test_buffers_live_by_path_and_never_in_state() -> None:
    comms = CommState()
    entry = comms.on_comm_open(
        "img",
        "jupyter.widget",
        {"state": {"format": "png"}},
        buffer_paths=[["value"], ["extra", 0]],
        buffers=[b"\x89PNG", b"\x01"],
    )
    assert entry.buffers == {("value",): b"\x89PNG", ("extra", 0): b"\x01"}
    assert "value" not in entry.state

    comms.on_comm_update("img", {}, buffer_paths=[["value"]], buffers=[b"new"])
    assert entry.buffers == {("value",): b"new", ("extra", 0): b"\x01"}


def test_a_json_value_replaces_the_buffers_under_its_key() -> None:
    comms = CommState()
    entry = comms.on_comm_open(
        "img", "t", {"state": {}}, buffer_paths=[["value"], ["extra", 0]], buffers=[b"a", b"b"]
    )
    comms.on_comm_update("img", {"value": "now text", "extra": [None]})
    assert entry.buffers == {}
    assert entry.state == {"value": "now text", "extra": [None]}


def test_a_buffer_replaces_the_json_value_at_its_key() -> None:
    comms = CommState()
    entry = comms.on_comm_open("img", "t", {"state": {"value": "text"}})
    comms.on_comm_update("img", {}, buffer_paths=[["value"]], buffers=[b"bytes"])
    assert "value" not in entry.state
    assert entry.buffers == {("value",): b"bytes"}


@pytest.mark.parametrize(
    ("paths", "buffers", "complaint"),
    [
        ([["a"]], [], "1 buffer_paths for 0 buffers"),
        ([[]], [b"x"], "non-empty list"),
        (["a"], [b"x"], "non-empty list"),
        ([["a", True]], [b"x"], "strings or ints"),
        ([["a", 1.5]], [b"x"], "strings or ints"),
        ([["a"]], ["text"], "must be bytes"),
    ],
)
def test_bad_buffers_raise_and_change_nothing(paths: list, buffers: list, complaint: str) -> None:
    comms = CommState()
    entry = comms.on_comm_open("a", "t", {"state": {"v": 1}})
    with pytest.raises(CommMessageError, match=complaint):
        comms.on_comm_update("a", {"v": 2}, buffer_paths=paths, buffers=buffers)
    with pytest.raises(CommMessageError, match=complaint):
        comms.on_comm_open("b", "t", {}, buffer_paths=paths, buffers=buffers)
    assert entry.state == {"v": 1}
    assert "b" not in comms


# ---------------------------------------------------------------------- Output capture


def test_an_output_widget_captures_its_msg_id_until_cleared() -> None:
    comms = CommState()
    comms.on_comm_open("out", "jupyter.widget", output_data())
    assert comms.capture_target("m1") is None

    comms.on_comm_update("out", {"msg_id": "m1"})
    assert comms.capture_target("m1") == "out"
    assert comms.capture_target("m2") is None
    assert comms.capture_target("") is None

    comms.on_comm_update("out", {"msg_id": ""})
    assert comms.capture_target("m1") is None


def test_nested_captures_the_latest_wins_and_popping_restores_the_outer() -> None:
    comms = CommState()
    comms.on_comm_open("outer", "t", output_data())
    comms.on_comm_open("inner", "t", output_data())
    comms.on_comm_update("outer", {"msg_id": "m"})
    comms.on_comm_update("inner", {"msg_id": "m"})
    assert comms.capture_target("m") == "inner"

    comms.on_comm_update("outer", {"msg_id": "m", "layout": "x"})  # unchanged msg_id
    assert comms.capture_target("m") == "inner"

    comms.on_comm_update("inner", {"msg_id": ""})
    assert comms.capture_target("m") == "outer"


def test_closing_or_clearing_stops_capture() -> None:
    comms = CommState()
    comms.on_comm_open("out", "t", output_data("m"))
    assert comms.capture_target("m") == "out"
    comms.on_comm_close("out")
    assert comms.capture_target("m") is None

    comms.on_comm_open("out", "t", output_data("m"))
    comms.clear()
    assert comms.capture_target("m") is None


def test_only_output_models_capture() -> None:
    comms = CommState()
    comms.on_comm_open("s", "t", slider_data(msg_id="m"))
    assert comms.capture_target("m") is None


def test_set_outputs_keeps_the_routers_hashes() -> None:
    comms = CommState()
    comms.on_comm_open("out", "t", output_data())
    entry = comms.set_outputs("out", ["ab" * 32])
    assert entry is not None
    assert entry.outputs == ["ab" * 32]
    assert comms.set_outputs("ghost", []) is None


# ---------------------------------------------------------------------- raw messages


def test_parse_comm_close_names_the_comm() -> None:
    assert parse_comm_close({"comm_id": "a"}) == "a"


def test_echo_updates_carry_state_too() -> None:
    parsed = parse_comm_update({"comm_id": "a", "data": {"method": "echo_update", "state": {}}})
    assert parsed is not None
    assert parsed.state == {}


def test_parse_comm_open_keeps_buffers_with_their_paths() -> None:
    content = {
        "comm_id": "a",
        "target_name": "jupyter.widget",
        "data": {"state": {}, "buffer_paths": [["value"]]},
    }
    parsed = parse_comm_open(content, [b"x"])
    assert parsed.buffer_paths == [["value"]]
    assert parsed.buffers == [b"x"]


@pytest.mark.parametrize(
    ("content", "buffers", "complaint"),
    [
        ("nope", [], "must be an object"),
        ({"data": {}}, [], "comm_id must be a non-empty string"),
        ({"comm_id": "", "data": {}}, [], "comm_id must be a non-empty string"),
        ({"comm_id": "a", "target_name": 3}, [], "target_name must be a string"),
        ({"comm_id": "a", "data": []}, [], "data must be an object"),
        ({"comm_id": "a", "data": {"state": 5}}, [], "state must be an object"),
        ({"comm_id": "a", "data": {"state": {}, "buffer_paths": "x"}}, [], "must be a list"),
        ({"comm_id": "a", "data": {"state": {}}}, [b"x"], "0 buffer_paths for 1 buffers"),
    ],
)
def test_parse_comm_open_refuses_bad_content(
    content: object, buffers: list, complaint: str
) -> None:
    with pytest.raises(CommMessageError, match=complaint):
        parse_comm_open(content, buffers)


def test_parse_comm_update_refuses_an_update_without_state() -> None:
    with pytest.raises(CommMessageError, match="needs a state object"):
        parse_comm_update({"comm_id": "a", "data": {"method": "update"}})
    with pytest.raises(CommMessageError, match="comm_id"):
        parse_comm_close({"comm_id": None})


# ---------------------------------------------------------------------- wire form


def test_to_wire_is_protocols_comm_snapshot() -> None:
    comms = CommState()
    entry = comms.on_comm_open(
        "img", "jupyter.widget", slider_data(), buffer_paths=[["value"]], buffers=[b"\x00\xff"]
    )
    entry.outputs.append("cd" * 32)

    assert to_wire(entry) == {
        "comm_id": "img",
        "target_name": "jupyter.widget",
        "model_module": "@jupyter-widgets/controls",
        "model_name": "IntSliderModel",
        "state": entry.state,
        "outputs": ["cd" * 32],
        "seq": 0,
        "buffer_paths": [["value"]],
        "buffers": [base64.b64encode(b"\x00\xff").decode("ascii")],
    }
    plain = to_wire(comms.on_comm_open("p", "t", {}))
    assert (plain["buffer_paths"], plain["buffers"]) == ([], [])
