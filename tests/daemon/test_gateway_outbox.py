"""The gateway's per-connection outbox and its kernel-WebSocket codec (pure logic)."""

from __future__ import annotations

import struct
from typing import Any

import pytest
from jupyter_server.services.kernels.connection.base import (
    deserialize_binary_message,
    serialize_binary_message,
)

from runtimed.gateway.outbox import Outbox
from runtimed.kernel import ws_codec as codec

_ids = iter(range(1_000_000))


def _msg(
    msg_type: str, content: dict[str, Any], buffers: list[bytes] | None = None, session: str = "s1"
) -> dict[str, Any]:
    n = next(_ids)
    return {
        "header": {"msg_id": f"m{n}", "msg_type": msg_type, "session": "kernel"},
        "parent_header": {"msg_id": f"p{n}", "session": session},
        "metadata": {},
        "content": content,
        "buffers": buffers or [],
    }


def _update(
    comm: str,
    state: dict,
    method: str = "update",
    paths: list | None = None,
    buffers: list[bytes] | None = None,
    session: str = "s1",
) -> dict[str, Any]:
    data = {"method": method, "state": state, "buffer_paths": paths or []}
    return _msg("comm_msg", {"comm_id": comm, "data": data}, buffers, session)


def _drain(box: Outbox) -> list[dict[str, Any]]:
    out = []
    while (item := box.pop()) is not None:
        out.append(item.msg)
    return out


def _summary(msgs: list[dict[str, Any]]) -> list[tuple]:
    rows = []
    for m in msgs:
        if m["header"]["msg_type"] == "comm_msg":
            data = m["content"]["data"]
            rows.append((m["content"]["comm_id"], data["method"], data.get("state")))
        else:
            rows.append((m["header"]["msg_type"],))
    return rows


def test_below_the_bound_everything_is_kept_in_order() -> None:
    box = Outbox(bound=10)
    msgs = [_update("a", {"value": i}) for i in range(5)]
    for m in msgs:
        box.push("iopub", m)
    assert _drain(box) == msgs
    assert box.merged == 0


def test_beyond_the_bound_updates_of_one_comm_merge_into_the_waiting_one() -> None:
    box = Outbox(bound=2)
    box.push("iopub", _msg("status", {"execution_state": "busy"}))
    box.push("iopub", _update("a", {"value": 0, "description": "x"}))
    box.push("iopub", _update("b", {"value": 0}))
    for i in range(1, 100):
        box.push("iopub", _update("a", {"value": i}))
        box.push("iopub", _update("b", {"value": -i}))
    last = _update("a", {"value": 100})
    box.push("iopub", last)
    box.push("iopub", _msg("status", {"execution_state": "idle"}))
    out = _drain(box)
    assert _summary(out) == [
        ("status",),
        ("a", "update", {"value": 100, "description": "x"}),
        ("b", "update", {"value": -99}),
        ("status",),
    ]
    assert out[1]["header"] == last["header"]  # the newest envelope
    assert box.merged == 199


def test_custom_messages_and_opens_keep_their_place() -> None:
    box = Outbox(bound=0)
    box.push("iopub", _update("a", {"value": 1}))
    custom = _msg("comm_msg", {"comm_id": "a", "data": {"method": "custom", "content": {}}})
    box.push("iopub", custom)
    box.push("iopub", _update("a", {"value": 2}))  # after the custom one: not merged back
    box.push("iopub", _msg("comm_open", {"comm_id": "c", "target_name": "t", "data": {}}))
    box.push("iopub", _update("a", {"value": 3}))  # may name "c": stays after its open
    box.push("iopub", _update("a", {"value": 4}))
    assert _summary(_drain(box)) == [
        ("a", "update", {"value": 1}),
        ("a", "custom", None),
        ("a", "update", {"value": 2}),
        ("comm_open",),
        ("a", "update", {"value": 4}),
    ]


def test_echoes_merge_only_within_one_session_and_method() -> None:
    box = Outbox(bound=0)
    box.push("iopub", _update("a", {"value": 1}, "echo_update", session="s1"))
    box.push("iopub", _update("a", {"value": 2}, "echo_update", session="s1"))
    box.push("iopub", _update("a", {"value": 3}, "echo_update", session="s2"))
    box.push("iopub", _update("a", {"value": 4}, "update"))
    box.push("iopub", _update("a", {"value": 5}, "update"))
    assert _summary(_drain(box)) == [
        ("a", "echo_update", {"value": 2}),
        ("a", "echo_update", {"value": 3}),
        ("a", "update", {"value": 5}),
    ]


def test_merged_buffers_follow_ipywidgets_rules_and_shared_messages_stay_intact() -> None:
    box = Outbox(bound=0)
    first = _update("a", {"x": 1}, paths=[["data"], ["other"]], buffers=[b"old", b"keep"])
    box.push("iopub", first)
    box.push("iopub", _update("a", {"data": "now text"}))
    box.push("iopub", _update("a", {}, paths=[["x"]], buffers=[b"binary x"]))
    (merged,) = _drain(box)
    data = merged["content"]["data"]
    assert data["state"] == {"data": "now text"}
    assert data["buffer_paths"] == [["other"], ["x"]]
    assert merged["buffers"] == [b"keep", b"binary x"]
    assert first["content"]["data"]["state"] == {"x": 1}  # other connections' copy


def test_other_channels_are_never_merged() -> None:
    box = Outbox(bound=0)
    replies = [_msg("execute_reply", {"status": "ok"}) for _ in range(3)]
    for reply in replies:
        box.push("shell", reply)
    assert _drain(box) == replies


# --- codec ---------------------------------------------------------------------------


def test_text_frames_round_trip_and_match_jupyter_servers_json() -> None:
    msg = _msg("execute_request", {"code": "1"})
    frame = codec.encode(msg, "shell")
    assert isinstance(frame, str)
    channel, decoded = codec.decode(frame)
    assert channel == "shell"
    assert decoded["header"] == msg["header"]
    assert decoded["content"] == {"code": "1"}


def test_binary_frames_use_jupyter_servers_layout_both_ways() -> None:
    msg = _update("a", {}, paths=[["v"]], buffers=[b"\x00\xff binary"])
    frame = codec.encode(msg, "iopub")
    assert isinstance(frame, bytes)
    theirs = deserialize_binary_message(frame)
    assert theirs["buffers"] == [b"\x00\xff binary"]
    assert theirs["channel"] == "iopub"
    ours = serialize_binary_message(
        {
            "header": {"msg_id": "x", "msg_type": "comm_msg"},
            "parent_header": {},
            "metadata": {},
            "content": {"comm_id": "a"},
            "channel": "shell",
            "buffers": [b"one", b"two"],
        }
    )
    channel, decoded = codec.decode(ours)
    assert (channel, decoded["buffers"]) == ("shell", [b"one", b"two"])
    # jupyter_server's gateway client sends that binary layout in a text frame: read
    # as bytes, the layout (not the frame type) decides.
    assert codec.decode(ours)[1]["buffers"] == [b"one", b"two"]
    assert codec.decode(b' {"header": {"msg_id": "x", "msg_type": "y"}}')[0] == "shell"


@pytest.mark.parametrize(
    ("frame", "problem"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "JSON object"),
        ('{"header": {"msg_id": "x"}}', "msg_type"),
        ('{"header": {"msg_id": "x", "msg_type": "y"}, "channel": "iopub"}', "no such channel"),
        ('{"header": {"msg_id": "x", "msg_type": "y"}, "content": [1]}', "content"),
        (b"\x00\x00", "at least 8 bytes"),
        (struct.pack("!II", 5, 8), "part count"),
        (struct.pack("!III", 2, 12, 8) + b"{}", "offsets"),
    ],
)
def test_bad_frames_say_what_is_wrong(frame: str | bytes, problem: str) -> None:
    with pytest.raises(codec.CodecError, match=problem):
        codec.decode(frame)
