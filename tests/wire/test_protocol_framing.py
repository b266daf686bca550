"""Frames round-trip between a client and a server Connection, byte for byte per the spec."""

from __future__ import annotations

import pytest
from protocol_helpers import HELLO, REPLY, connected_pair, drain

from runtimed.wire import (
    NEED_DATA,
    PREAMBLE,
    PROTOCOL_VERSION,
    Broadcast,
    Closed,
    Connection,
    ErrorInfo,
    Event,
    Framing,
    Handshake,
    Presence,
    Request,
    Response,
    Role,
    Snapshot,
    Sync,
)

CLIENT_EVENTS: list[Event] = [
    Sync(b"\x42\x00\xff automerge bytes"),
    Sync(b""),
    Request(1, "execute_cell", {"cell_id": "c1"}),
    Request("req-é", "get_comms", {}),
    Request(2**40, "send_comm", {"comm_id": "x", "data": {"nested": [1, 2.5, None, True]}}),
    Presence({"cursor": {"cell": "c1", "offset": 3}, "name": "ada ✓"}),
]
SERVER_EVENTS: list[Event] = [
    Sync(bytes(range(256))),
    Snapshot(b"\x85o J\x83 saved doc"),
    Response(1, True, result={"msg_id": "m-1"}),
    Response("a", True, result={}),
    Response(None, False, error=ErrorInfo("bad_request", "cell_id: expected str, got int")),
    Broadcast("kernel_status", {"status": "idle"}),
    Broadcast("comm_sync", {"comms": []}),
    Presence({"peers": 2}),
]


@pytest.mark.parametrize("framing", list(Framing))
@pytest.mark.parametrize("event", CLIENT_EVENTS, ids=repr)
def test_client_events_reach_the_server_unchanged(framing: Framing, event: Event) -> None:
    client, server = connected_pair(framing)
    server.receive_data(client.send(event))
    assert drain(server) == [event]


@pytest.mark.parametrize("framing", list(Framing))
@pytest.mark.parametrize("event", SERVER_EVENTS, ids=repr)
def test_server_events_reach_the_client_unchanged(framing: Framing, event: Event) -> None:
    client, server = connected_pair(framing)
    client.receive_data(server.send(event))
    assert drain(client) == [event]


def test_response_without_result_is_sent_as_an_empty_result() -> None:
    client, server = connected_pair()
    client.receive_data(server.send(Response(3, True)))
    assert drain(client) == [Response(3, True, result={})]


# ------------------------------------------------------------------- golden bytes


def test_preamble_is_the_spec_magic_and_version() -> None:
    assert PREAMBLE + bytes([PROTOCOL_VERSION]) == bytes.fromhex("C0DE01AC02")


def test_stream_client_hello_is_preamble_then_length_prefixed_json() -> None:
    client = Connection(Role.CLIENT)
    wire = client.send(Handshake({"channel": "control"}))
    assert wire == b'\xc0\xde\x01\xac\x02\x00\x00\x00\x15{"channel":"control"}'


def test_message_client_hello_is_bare_json() -> None:
    client = Connection(Role.CLIENT, framing=Framing.MESSAGE)
    assert client.send(Handshake({"channel": "control"})) == b'{"channel":"control"}'


def test_stream_request_frame_bytes() -> None:
    client, _ = connected_pair()
    wire = client.send(Request(1, "ping", {}))
    assert wire == b'\x00\x00\x00\x19\x01{"id":1,"action":"ping"}'


def test_request_params_follow_id_and_action() -> None:
    client, _ = connected_pair(Framing.MESSAGE)
    wire = client.send(Request("r", "save", {"path": "/tmp/a.ipynb"}))
    assert wire == b'\x01{"id":"r","action":"save","path":"/tmp/a.ipynb"}'


def test_response_frame_bytes() -> None:
    _, server = connected_pair(Framing.MESSAGE)
    assert server.send(Response(7, True, result={"status": "idle"})) == (
        b'\x02{"id":7,"ok":true,"result":{"status":"idle"}}'
    )
    assert server.send(Response(8, False, error=ErrorInfo("no_kernel", "none"))) == (
        b'\x02{"id":8,"ok":false,"error":{"code":"no_kernel","message":"none"}}'
    )


def test_binary_frames_carry_raw_bytes_after_the_type_byte() -> None:
    _, server = connected_pair()
    assert server.send(Sync(b"\x01\x02")) == b"\x00\x00\x00\x03\x00\x01\x02"
    assert server.send(Snapshot(b"\xaa")) == b"\x00\x00\x00\x02\x05\xaa"


def test_broadcast_and_presence_frame_bytes() -> None:
    client, server = connected_pair(Framing.MESSAGE)
    assert server.send(Broadcast("kernel_status", {"status": "busy"})) == (
        b'\x03{"event":"kernel_status","status":"busy"}'
    )
    assert client.send(Presence({"x": 1})) == b'\x04{"x":1}'


def test_server_reads_spec_bytes_written_by_hand() -> None:
    server = Connection(Role.SERVER)
    server.receive_data(
        bytes.fromhex("C0DE01AC02")
        + b'\x00\x00\x00\x15{"channel":"control"}'
        + b'\x00\x00\x00\x19\x01{"id":1,"action":"ping"}'
    )
    assert server.next_event() == Handshake({"channel": "control"})
    assert server.next_event() == Request(1, "ping", {})
    assert server.next_event() is NEED_DATA


# ---------------------------------------------------------------- chunk boundaries


def _client_stream() -> tuple[bytes, list[Event]]:
    """Everything a client writes for a session, and what the server should read."""
    client = Connection(Role.CLIENT)
    wire = client.send(Handshake(HELLO)) + b"".join(client.send(e) for e in CLIENT_EVENTS)
    return wire, [Handshake(HELLO), *CLIENT_EVENTS]


def test_stream_fed_one_byte_at_a_time() -> None:
    wire, expected = _client_stream()
    server = Connection(Role.SERVER)
    events: list[Event] = []
    for i in range(len(wire)):
        server.receive_data(wire[i : i + 1])
        events.extend(drain(server))
    server.receive_data(b"")
    events.extend(drain(server))
    assert events == [*expected, Closed()]


def test_many_frames_in_one_chunk() -> None:
    client = Connection(Role.CLIENT)
    hello = client.send(Handshake(HELLO))
    frames = [client.send(e) for e in CLIENT_EVENTS * 50]
    server = Connection(Role.SERVER)
    server.receive_data(hello + b"".join(frames))
    assert drain(server) == [Handshake(HELLO), *CLIENT_EVENTS * 50]


def test_daemon_replies_and_frames_in_one_chunk_reach_the_client() -> None:
    client = Connection(Role.CLIENT)
    server = Connection(Role.SERVER)
    server.receive_data(client.send(Handshake(HELLO)))
    drain(server)
    chunk = server.send(Handshake(REPLY)) + b"".join(server.send(e) for e in SERVER_EVENTS)
    client.receive_data(chunk)
    assert drain(client) == [Handshake(REPLY), *SERVER_EVENTS]


def test_end_of_stream_at_a_frame_boundary_is_closed_every_time() -> None:
    client, server = connected_pair()
    server.receive_data(client.send(Sync(b"x")))
    server.receive_data(b"")
    assert drain(server) == [Sync(b"x"), Closed()]
    assert server.next_event() == Closed()


def test_client_that_leaves_before_the_preamble_is_a_clean_close() -> None:
    server = Connection(Role.SERVER)
    server.receive_data(b"")
    assert server.next_event() == Closed()


def test_message_framing_end_of_stream() -> None:
    client, server = connected_pair(Framing.MESSAGE)
    server.receive_data(client.send(Sync(b"x")))
    server.receive_data(b"")
    assert drain(server) == [Sync(b"x"), Closed()]


def test_frame_of_exactly_the_cap_passes() -> None:
    client = Connection(Role.CLIENT, max_frame_size=64)
    server = Connection(Role.SERVER, max_frame_size=64)
    server.receive_data(client.send(Handshake({"channel": "control"})))
    sync = Sync(b"s" * 63)  # type byte + 63 = 64
    server.receive_data(client.send(sync))
    assert drain(server) == [Handshake({"channel": "control"}), sync]


def test_handshake_done_waits_for_an_ok_reply() -> None:
    client = Connection(Role.CLIENT)
    server = Connection(Role.SERVER)
    server.receive_data(client.send(Handshake(HELLO)))
    drain(server)
    assert not server.handshake_done
    assert not client.handshake_done
    client.receive_data(server.send(Handshake(REPLY)))
    assert server.handshake_done
    assert not client.handshake_done
    drain(client)
    assert client.handshake_done


def test_client_may_pipeline_requests_after_its_hello() -> None:
    client = Connection(Role.CLIENT)
    server = Connection(Role.SERVER)
    wire = client.send(Handshake(HELLO)) + client.send(Request(1, "kernel_info", {}))
    server.receive_data(wire)
    assert drain(server) == [Handshake(HELLO), Request(1, "kernel_info", {})]
