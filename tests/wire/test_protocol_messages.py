"""Handshake and request validation: typed structs out, specific RequestErrors for bad input."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from protocol_helpers import connected_pair, drain

from runtimed.wire import ErrorInfo, Request, Response
from runtimed.wire.messages import (
    CONTROL_ACTIONS,
    NOTEBOOK_ACTIONS,
    AttachKernel,
    ClientInfo,
    Compact,
    DaemonInfo,
    Execute,
    ExecuteCell,
    Forget,
    Gc,
    GetBlob,
    GetComms,
    HandshakeHello,
    InterruptKernel,
    KernelInfo,
    LaunchKernel,
    ListRooms,
    ListStored,
    Ping,
    RequestError,
    RequestParams,
    RestartKernel,
    Resync,
    Save,
    SendComm,
    ShutdownDaemon,
    ShutdownKernel,
    Trust,
    TrustInfo,
    error_response,
    handshake_ok,
    ok_response,
    parse_handshake,
    parse_request,
)

HASH = "0123456789abcdef" * 4

VALID_REQUESTS: list[tuple[str, str, dict[str, Any], RequestParams]] = [
    ("notebook", "launch_kernel", {}, LaunchKernel()),
    (
        "notebook",
        "launch_kernel",
        {"kernel_name": "python3", "cwd": "/tmp"},
        LaunchKernel(kernel_name="python3", cwd="/tmp"),
    ),
    (
        "notebook",
        "attach_kernel",
        {"connection_file": "/run/k.json"},
        AttachKernel(connection_file="/run/k.json"),
    ),
    ("notebook", "execute_cell", {"cell_id": "c1"}, ExecuteCell(cell_id="c1")),
    ("notebook", "execute", {"code": "1+1"}, Execute(code="1+1")),
    ("notebook", "execute", {"code": "x", "cell_id": "c"}, Execute(code="x", cell_id="c")),
    (
        "notebook",
        "send_comm",
        {"comm_id": "w", "data": {"method": "update", "state": {"value": 3}}},
        SendComm(comm_id="w", data={"method": "update", "state": {"value": 3}}),
    ),
    (
        "notebook",
        "send_comm",
        {"comm_id": "w", "data": {}, "buffers": [base64.b64encode(b"\x00\xffraw").decode()]},
        SendComm(comm_id="w", data={}, buffers=[b"\x00\xffraw"]),
    ),
    ("notebook", "interrupt_kernel", {}, InterruptKernel()),
    ("notebook", "restart_kernel", {}, RestartKernel()),
    ("notebook", "shutdown_kernel", {}, ShutdownKernel()),
    ("notebook", "get_comms", {}, GetComms()),
    ("notebook", "save", {}, Save()),
    ("notebook", "save", {"path": "/tmp/a.ipynb"}, Save(path="/tmp/a.ipynb")),
    ("notebook", "kernel_info", {}, KernelInfo()),
    ("notebook", "get_blob", {"hash": HASH}, GetBlob(hash=HASH)),
    ("notebook", "resync", {}, Resync()),
    ("notebook", "compact", {}, Compact()),
    ("notebook", "trust", {}, Trust()),
    ("notebook", "trust_info", {}, TrustInfo()),
    ("control", "ping", {}, Ping()),
    ("control", "daemon_info", {}, DaemonInfo()),
    ("control", "list_rooms", {}, ListRooms()),
    ("control", "shutdown_daemon", {}, ShutdownDaemon()),
    ("control", "gc", {}, Gc()),
    ("control", "gc", {"min_age": 0}, Gc(min_age=0)),
    ("control", "gc", {"drop_missing": True}, Gc(drop_missing=True)),
    ("control", "list_stored", {}, ListStored()),
    ("control", "forget", {"notebook_id": "/a.ipynb"}, Forget(notebook_id="/a.ipynb")),
    ("notebook", "trust", {}, Trust()),
    ("notebook", "trust_info", {}, TrustInfo()),
    (
        "notebook",
        "attach_kernel",
        {"connection_file": "k.json", "replace": True},
        AttachKernel(connection_file="k.json", replace=True),
    ),
]


@pytest.mark.parametrize(("channel", "action", "params", "expected"), VALID_REQUESTS)
def test_spec_params_give_the_action_struct(
    channel: str, action: str, params: dict[str, Any], expected: RequestParams
) -> None:
    assert parse_request(Request(1, action, params), channel=channel) == expected


def test_every_action_is_covered() -> None:
    covered = {(channel, action) for channel, action, _, _ in VALID_REQUESTS}
    assert covered == {("notebook", a) for a in NOTEBOOK_ACTIONS} | {
        ("control", a) for a in CONTROL_ACTIONS
    }


@pytest.mark.parametrize(
    ("action", "params", "message"),
    [
        ("launch_kernel", {"kernel_name": 3}, "kernel_name: expected str | null, got int"),
        ("launch_kernel", {"cwd": ["/"]}, "cwd: expected str | null, got array"),
        ("attach_kernel", {}, "missing required field connection_file"),
        ("execute_cell", {"cell_id": 1}, "cell_id: expected str, got int"),
        ("execute_cell", {"cell_id": True}, "cell_id: expected str, got bool"),
        ("execute", {"cell_id": "c"}, "missing required field code"),
        ("execute", {"code": None}, "code: expected str, got null"),
        ("send_comm", {"comm_id": "w", "data": []}, "data: expected object, got array"),
        (
            "send_comm",
            {"comm_id": "w", "data": {}, "buffers": ["@@"]},
            "buffers[0]: invalid base64",
        ),
        ("send_comm", {"comm_id": "w", "data": {}, "buffers": "aGk="}, "buffers: expected array"),
        ("save", {"path": 1}, "path: expected str | null, got int"),
        ("get_blob", {"hash": HASH.upper()}, "hash: expected str matching regex"),
        ("get_blob", {"hash": HASH[:-1]}, "hash: expected str matching regex"),
        ("get_blob", {}, "missing required field hash"),
        ("execute_cell", {"cell_id": "c", "cellid": "c"}, "unknown field cellid"),
        ("kernel_info", {"verbose": True}, "unknown field verbose"),
    ],
)
def test_bad_params_name_the_field(action: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_request(Request(1, action, params), channel="notebook")
    assert info.value.code == "bad_request"
    assert info.value.message.startswith(f"{action}: ")
    assert message in info.value.message


def test_unknown_action_lists_the_known_ones() -> None:
    with pytest.raises(RequestError) as info:
        parse_request(Request(1, "run_everything", {}), channel="control")
    assert info.value.code == "unknown_action"
    assert "'run_everything'" in info.value.message
    assert "ping, daemon_info, list_rooms, shutdown_daemon" in info.value.message


@pytest.mark.parametrize(
    ("action", "channel", "hint"),
    [("ping", "notebook", "control-channel"), ("execute", "control", "notebook-channel")],
)
def test_actions_belong_to_their_channel(action: str, channel: str, hint: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_request(Request(1, action, {"code": "x"}), channel=channel)
    assert info.value.code == "unknown_action"
    assert hint in info.value.message


def test_request_read_off_the_wire_parses() -> None:
    client, server = connected_pair()
    server.receive_data(client.send(Request(5, "execute", {"code": "print(1)"})))
    [request] = drain(server)
    assert parse_request(request, channel="notebook") == Execute(code="print(1)")


# ------------------------------------------------------------------------- handshake


def test_notebook_hello() -> None:
    hello = parse_handshake(
        {
            "channel": "notebook",
            "notebook_id": "/home/u/a.ipynb",
            "path": "/home/u/a.ipynb",
            "snapshot": True,
            "client": {"name": "runtimed-py", "version": "0.1.0"},
        }
    )
    assert hello == HandshakeHello(
        channel="notebook",
        notebook_id="/home/u/a.ipynb",
        path="/home/u/a.ipynb",
        snapshot=True,
        client=ClientInfo(name="runtimed-py", version="0.1.0"),
    )


def test_control_hello_and_defaults() -> None:
    hello = parse_handshake({"channel": "control"})
    assert hello == HandshakeHello(channel="control")
    assert hello.snapshot is False
    assert hello.protocol == 2


def test_create_is_false_unless_the_client_asks() -> None:
    assert parse_handshake({"channel": "notebook", "notebook_id": "n"}).create is False
    asked = {"channel": "notebook", "notebook_id": "/a.ipynb", "path": "/a.ipynb", "create": True}
    assert parse_handshake(asked).create is True


def test_unknown_hello_keys_are_ignored_for_newer_clients() -> None:
    hello = parse_handshake({"channel": "notebook", "notebook_id": "n", "peer_color": "red"})
    assert hello.notebook_id == "n"


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({}, "missing required field channel"),
        ({"channel": "kernel"}, "channel: invalid enum value 'kernel'"),
        ({"channel": "notebook"}, "notebook_id"),
        ({"channel": "notebook", "notebook_id": ""}, "notebook_id"),
        ({"channel": "notebook", "notebook_id": 7}, "notebook_id: expected str | null, got int"),
        ({"channel": "notebook", "notebook_id": "n", "path": ""}, "path: must not be empty"),
        ({"channel": "notebook", "notebook_id": "n", "snapshot": "yes"}, "snapshot: expected bool"),
        ({"channel": "notebook", "notebook_id": "n", "client": {"name": 1}}, "client.name"),
        ({"channel": "control", "notebook_id": "n"}, "control channel takes no notebook_id"),
        ({"channel": "control", "snapshot": True}, "control channel"),
        ({"channel": "control", "create": True}, "control channel"),
        ({"channel": "notebook", "notebook_id": "n", "create": "yes"}, "create: expected bool"),
    ],
)
def test_bad_hello_is_bad_handshake(payload: dict[str, Any], message: str) -> None:
    with pytest.raises(RequestError) as info:
        parse_handshake(payload)
    assert info.value.code == "bad_handshake"
    assert message in info.value.message


def test_hello_for_another_protocol_version_is_unsupported() -> None:
    with pytest.raises(RequestError) as info:
        parse_handshake({"channel": "control", "protocol": 1})
    assert info.value.code == "unsupported_version"


def test_handshake_ok_matches_the_spec() -> None:
    assert handshake_ok(daemon_version="0.1.0", notebook_id="nb") == {
        "ok": True,
        "protocol": 2,
        "daemon_version": "0.1.0",
        "notebook_id": "nb",
    }


def test_response_helpers_cross_the_wire() -> None:
    client, server = connected_pair()
    client.receive_data(server.send(ok_response(1, {"status": "idle"})))
    client.receive_data(server.send(error_response("r", "no_kernel", "launch one first")))
    assert drain(client) == [
        Response(1, True, result={"status": "idle"}),
        Response("r", False, error=ErrorInfo("no_kernel", "launch one first")),
    ]
