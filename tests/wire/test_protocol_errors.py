"""Every protocol violation raises a ProtocolError with the spec's code, and stays raised."""

from __future__ import annotations

import tracemalloc

import pytest
from protocol_helpers import HELLO, REPLY, connected_pair, drain, server_after_hello

from runtimed.wire import (
    NEED_DATA,
    PREAMBLE,
    Broadcast,
    Closed,
    Connection,
    ErrorInfo,
    Event,
    Framing,
    Handshake,
    LocalProtocolError,
    Presence,
    RemoteProtocolError,
    Request,
    Response,
    Role,
    Snapshot,
    Sync,
)

VERSIONED_PREAMBLE = PREAMBLE + b"\x02"


def _frame(body: bytes) -> bytes:
    return len(body).to_bytes(4, "big") + body


def _remote_error(conn: Connection, data: bytes) -> RemoteProtocolError:
    conn.receive_data(data)
    with pytest.raises(RemoteProtocolError) as info:
        drain(conn)
    return info.value


# ----------------------------------------------------------------------- preamble


@pytest.mark.parametrize(
    "data", [b"GET / HTTP/1.1\r\n", b"\xc0\xde\x01\xad\x02", b"\x00\x00\x00\x15{"]
)
def test_wrong_magic_is_bad_preamble(data: bytes) -> None:
    error = _remote_error(Connection(Role.SERVER), data)
    assert error.code == "bad_preamble"


def test_wrong_magic_fails_on_its_first_wrong_byte() -> None:
    server = Connection(Role.SERVER)
    server.receive_data(PREAMBLE[:2])
    assert server.next_event() is NEED_DATA
    assert _remote_error(server, b"\x00").code == "bad_preamble"


def test_unknown_version_is_unsupported_version() -> None:
    error = _remote_error(Connection(Role.SERVER), PREAMBLE + b"\x01")
    assert error.code == "unsupported_version"
    assert "version 1 is not supported" in error.message


def test_stream_ending_inside_the_preamble_is_bad_preamble() -> None:
    server = Connection(Role.SERVER)
    server.receive_data(PREAMBLE[:3])
    assert _remote_error(server, b"").code == "bad_preamble"


# ----------------------------------------------------------------------- frame size


@pytest.mark.parametrize("framing", list(Framing))
def test_frame_over_the_cap_is_frame_too_large(framing: Framing) -> None:
    client = Connection(Role.CLIENT, framing=framing)
    server = Connection(Role.SERVER, framing=framing, max_frame_size=64)
    server.receive_data(client.send(Handshake({"channel": "control"})))
    drain(server)
    assert _remote_error(server, client.send(Sync(b"s" * 64))).code == "frame_too_large"


def test_oversized_length_fails_before_any_body_arrives() -> None:
    server = server_after_hello()
    assert _remote_error(server, b"\xff\xff\xff\xff").code == "frame_too_large"


def test_oversized_hello_is_frame_too_large() -> None:
    error = _remote_error(Connection(Role.SERVER), VERSIONED_PREAMBLE + b"\x01\x00\x00\x01")
    assert error.code == "frame_too_large"


def test_body_of_a_4_gib_frame_is_never_buffered() -> None:
    server = server_after_hello()
    chunk = bytes(1024 * 1024)
    tracemalloc.start()
    try:
        assert _remote_error(server, b"\xff\xff\xff\xff").code == "frame_too_large"
        for _ in range(64):  # a peer that keeps sending the announced body
            server.receive_data(chunk)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(chunk)  # 64 MiB went in, almost nothing stayed


# ------------------------------------------------------------------ truncation, EOF


def test_stream_ending_inside_a_frame_is_bad_frame() -> None:
    client, server = connected_pair()
    wire = client.send(Sync(b"abcdef"))
    server.receive_data(wire[:-1])
    assert server.next_event() is NEED_DATA
    error = _remote_error(server, b"")
    assert error.code == "bad_frame"
    assert "ended inside a frame" in error.message


def test_stream_ending_inside_a_length_prefix_is_bad_frame() -> None:
    server = server_after_hello()
    server.receive_data(b"\x00\x00")
    assert _remote_error(server, b"").code == "bad_frame"


def test_data_after_end_of_stream_is_refused() -> None:
    _, server = connected_pair()
    server.receive_data(b"")
    with pytest.raises(LocalProtocolError) as info:
        server.receive_data(b"x")
    assert info.value.code == "data_after_eof"


# ------------------------------------------------------------------ typed frames


@pytest.mark.parametrize(
    ("body", "message_part"),
    [
        (b"", "empty frame"),
        (b"\x07", "unknown frame type 0x07"),
        (b"\xff{}", "unknown frame type 0xff"),
        (b"\x01{not json", "invalid JSON"),
        (b'\x01{"id":1,"action":"\xff"}', "invalid UTF-8"),
        (b'\x04{"name":"\xc3"}', "invalid UTF-8"),
        (b"\x01[1, 2]", "Expected `object`"),
        (b'\x04"text"', "Expected `object`"),
        (b"\x01" + b'{"a":' * 100_000, "nested too deeply"),
        (b'\x04{"a":' + b"[" * 100_000, "nested too deeply"),
        (b'\x01{"action":"ping"}', '"id"'),
        (b'\x01{"id":true,"action":"ping"}', '"id"'),
        (b'\x01{"id":1.5,"action":"ping"}', '"id"'),
        (b'\x01{"id":null,"action":"ping"}', '"id"'),
        (b'\x01{"id":1}', '"action"'),
        (b'\x01{"id":1,"action":7}', '"action"'),
    ],
)
def test_malformed_frames_from_a_client_are_bad_frame(body: bytes, message_part: str) -> None:
    error = _remote_error(server_after_hello(), _frame(body))
    assert error.code == "bad_frame"
    assert message_part in error.message


@pytest.mark.parametrize(
    "body",
    [
        b'\x02{"ok":true,"result":{}}',  # no id
        b'\x02{"id":[1],"ok":true,"result":{}}',
        b'\x02{"id":1,"ok":1,"result":{}}',
        b'\x02{"id":1,"ok":true}',
        b'\x02{"id":1,"ok":true,"result":[]}',
        b'\x02{"id":1,"ok":false,"error":"boom"}',
        b'\x02{"id":1,"ok":false,"error":{"code":"x"}}',
        b'\x03{"status":"idle"}',
        b'\x03{"event":3}',
    ],
)
def test_malformed_daemon_frames_are_bad_frame(body: bytes) -> None:
    client, _ = connected_pair()
    assert _remote_error(client, _frame(body)).code == "bad_frame"


@pytest.mark.parametrize(
    "event",
    [
        Response(1, True, result={}),
        Broadcast("kernel_status", {"status": "idle"}),
        Snapshot(b"doc"),
    ],
    ids=repr,
)
def test_server_refuses_daemon_only_frame_types(event: Event) -> None:
    _, daemon = connected_pair()
    _, server = connected_pair()
    error = _remote_error(server, daemon.send(event))
    assert error.code == "bad_frame"
    assert "client may not send" in error.message


def test_client_refuses_a_request_from_the_daemon() -> None:
    client, _ = connected_pair()
    other_client, _ = connected_pair()
    error = _remote_error(client, other_client.send(Request(1, "ping", {})))
    assert error.code == "bad_frame"
    assert "server may not send REQUEST" in error.message


# -------------------------------------------------------------------- handshake


@pytest.mark.parametrize(
    "hello",
    [
        b'\x01{"id":1,"action":"ping"}',  # a typed frame before the handshake
        b"[1]",
        b"{}",
        b'{"channel":"kernel"}',
        b'{"channel":["notebook"]}',
        b'{"channel":{"a":1}}',
        b"",
        b'{"channel":"control"',
    ],
)
def test_server_rejects_a_bad_hello(hello: bytes) -> None:
    error = _remote_error(Connection(Role.SERVER), VERSIONED_PREAMBLE + _frame(hello))
    assert error.code == "bad_handshake"


@pytest.mark.parametrize("reply", [b'{"protocol":1}', b'{"ok":"yes"}', b"[]", b"\x03{}"])
def test_client_rejects_a_reply_without_boolean_ok(reply: bytes) -> None:
    client = Connection(Role.CLIENT)
    client.send(Handshake(HELLO))
    assert _remote_error(client, _frame(reply)).code == "bad_handshake"


def test_after_a_refused_handshake_only_the_end_may_follow() -> None:
    client = Connection(Role.CLIENT)
    client.send(Handshake(HELLO))
    refusal = {"ok": False, "error": {"code": "bad_handshake", "message": "no"}}
    client.receive_data(_frame(b'{"ok":false,"error":{"code":"bad_handshake","message":"no"}}'))
    assert client.next_event() == Handshake(refusal)
    assert not client.handshake_done
    error = _remote_error(client, _frame(b"\x00sync"))
    assert error.code == "bad_frame"


def test_refused_client_sees_a_clean_close() -> None:
    client = Connection(Role.CLIENT, framing=Framing.MESSAGE)
    client.send(Handshake(HELLO))
    client.receive_data(b'{"ok":false,"error":{"code":"x","message":"y"}}')
    client.receive_data(b"")
    assert drain(client)[-1] == Closed()


# --------------------------------------------------------------------- stickiness


def test_remote_errors_are_sticky() -> None:
    client, server = connected_pair()
    first = _remote_error(server, _frame(b"\x09"))
    server.receive_data(client.send(Sync(b"fine")))  # valid data after the error is dropped
    for _ in range(2):
        with pytest.raises(RemoteProtocolError) as info:
            server.next_event()
        assert info.value is first


def test_sticky_error_survives_end_of_stream() -> None:
    server = Connection(Role.SERVER)
    _remote_error(server, b"nope")
    server.receive_data(b"")
    with pytest.raises(RemoteProtocolError, match="bad_preamble"):
        server.next_event()


# -------------------------------------------------------------------- error frames


def test_error_frame_before_the_handshake_is_an_untyped_refusal() -> None:
    server = Connection(Role.SERVER)
    _remote_error(server, b"HTTP")
    wire = server.error_frame("bad_preamble", "expected the runtimed magic")
    body = b'{"ok":false,"error":{"code":"bad_preamble","message":"expected the runtimed magic"}}'
    assert wire == _frame(body)
    assert len(body) == 84
    assert wire[:4] == b"\x00\x00\x00\x54"


def test_error_frame_after_the_handshake_is_a_fatal_broadcast() -> None:
    client, server = connected_pair()
    wire = server.error_frame("bad_frame", "unknown frame type 0x09")
    body = (
        b'\x03{"event":"error","code":"bad_frame","message":"unknown frame type 0x09","fatal":true}'
    )
    assert wire == _frame(body)
    client.receive_data(wire)
    assert drain(client) == [
        Broadcast(
            "error", {"code": "bad_frame", "message": "unknown frame type 0x09", "fatal": True}
        )
    ]


def test_client_reads_an_error_frame_sent_before_the_reply_as_a_refusal() -> None:
    client = Connection(Role.CLIENT, framing=Framing.MESSAGE)
    server = Connection(Role.SERVER, framing=Framing.MESSAGE)
    server.receive_data(client.send(Handshake({"channel": "control"})))
    drain(server)
    client.receive_data(server.error_frame("bad_handshake", "no such room"))
    refusal = {"ok": False, "error": {"code": "bad_handshake", "message": "no such room"}}
    assert drain(client) == [Handshake(refusal)]
    assert not client.handshake_done


def test_nothing_follows_an_error_frame() -> None:
    _, server = connected_pair()
    server.error_frame("bad_frame", "x")
    with pytest.raises(LocalProtocolError, match="closing"):
        server.send(Sync(b""))
    with pytest.raises(LocalProtocolError, match="closing"):
        server.error_frame("bad_frame", "again")


def test_nothing_follows_a_refusal_sent_as_a_handshake() -> None:
    client = Connection(Role.CLIENT)
    server = Connection(Role.SERVER)
    server.receive_data(client.send(Handshake(HELLO)))
    drain(server)
    server.send(Handshake({"ok": False, "error": {"code": "bad_handshake", "message": "x"}}))
    assert not server.handshake_done
    with pytest.raises(LocalProtocolError, match="closing"):
        server.send(Broadcast("kernel_status", {"status": "idle"}))


def test_only_the_daemon_sends_error_frames() -> None:
    client, _ = connected_pair()
    with pytest.raises(LocalProtocolError) as info:
        client.error_frame("bad_frame", "x")
    assert info.value.code == "wrong_direction"


# --------------------------------------------------------------------- local errors


def test_typed_frames_before_the_handshake_are_refused() -> None:
    client = Connection(Role.CLIENT)
    with pytest.raises(LocalProtocolError) as info:
        client.send(Request(1, "ping", {}))
    assert info.value.code == "handshake_pending"
    server = Connection(Role.SERVER)
    server.receive_data(client.send(Handshake(HELLO)))
    drain(server)
    with pytest.raises(LocalProtocolError, match="handshake_pending"):
        server.send(Broadcast("kernel_status", {"status": "idle"}))


def test_server_replies_only_after_the_hello() -> None:
    server = Connection(Role.SERVER)
    with pytest.raises(LocalProtocolError, match="handshake_pending"):
        server.send(Handshake(REPLY))


@pytest.mark.parametrize(
    ("role", "payload"),
    [
        (Role.CLIENT, {"channel": "kernel"}),
        (Role.CLIENT, {}),
        (Role.SERVER, {"protocol": 1}),
        (Role.SERVER, {"ok": "true"}),
    ],
)
def test_sending_a_malformed_handshake_is_refused(role: Role, payload: dict) -> None:
    conn = Connection(role)
    if role is Role.SERVER:
        conn.receive_data(Connection(Role.CLIENT).send(Handshake(HELLO)))
        drain(conn)
    with pytest.raises(LocalProtocolError) as info:
        conn.send(Handshake(payload))
    assert info.value.code == "bad_handshake"


def test_the_handshake_goes_once() -> None:
    client, _ = connected_pair()
    with pytest.raises(LocalProtocolError, match="already sent"):
        client.send(Handshake(HELLO))


@pytest.mark.parametrize(
    ("role", "event"),
    [
        (Role.CLIENT, Response(1, True, result={})),
        (Role.CLIENT, Broadcast("x", {})),
        (Role.CLIENT, Snapshot(b"")),
        (Role.SERVER, Request(1, "ping", {})),
    ],
    ids=repr,
)
def test_sending_against_the_direction_is_refused(role: Role, event: Event) -> None:
    client, server = connected_pair()
    conn = client if role is Role.CLIENT else server
    with pytest.raises(LocalProtocolError) as info:
        conn.send(event)
    assert info.value.code == "wrong_direction"


@pytest.mark.parametrize(
    "event",
    [
        Sync("not bytes"),  # type: ignore[arg-type]
        Request(True, "ping", {}),
        Request(1.5, "ping", {}),  # type: ignore[arg-type]
        Request(1, "ping", {"id": 2}),
        Request(1, "ping", {"action": "other"}),
        Request(1, "ping", {"obj": object()}),
        Request(1, "ping", {"k": {1j: 1}}),
        Response(1, True, error=ErrorInfo("x", "y")),
        Response(1, False),
        Response(1, True, result=[1]),  # type: ignore[arg-type]
        Response([1], True, result={}),  # type: ignore[arg-type]
        Broadcast("x", {"event": "y"}),
        Broadcast(3, {}),  # type: ignore[arg-type]
        Presence([1, 2]),  # type: ignore[arg-type]
        Closed(),
    ],
    ids=repr,
)
def test_malformed_events_are_refused_and_change_nothing(event: Event) -> None:
    client, server = connected_pair()
    conn = server if isinstance(event, Response | Broadcast) else client
    with pytest.raises(LocalProtocolError) as info:
        conn.send(event)
    assert info.value.code == "bad_event"
    peer = client if conn is server else server
    peer.receive_data(conn.send(Sync(b"still fine")))
    assert drain(peer) == [Sync(b"still fine")]


def test_deeply_nested_payload_is_refused_locally() -> None:
    nested: list = []
    for _ in range(100_000):
        nested = [nested]
    client, _ = connected_pair()
    with pytest.raises(LocalProtocolError, match="bad_event"):
        client.send(Presence({"deep": nested}))


def test_frame_over_the_cap_is_not_sent() -> None:
    client = Connection(Role.CLIENT, max_frame_size=32)
    client.send(Handshake({"channel": "control"}))
    with pytest.raises(LocalProtocolError) as info:
        client.send(Sync(b"x" * 32))
    assert info.value.code == "frame_too_large"
    assert client.send(Sync(b"x" * 31)) == b"\x00\x00\x00\x20\x00" + b"x" * 31
