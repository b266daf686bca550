"""The SWITCH frame (protocol.md, Compaction): its bytes, and what is not one."""

from __future__ import annotations

import pytest

from runtimed.wire import Framing, LocalProtocolError, RemoteProtocolError, Switch
from tests.wire.protocol_helpers import connected_pair, drain


@pytest.mark.parametrize("framing", list(Framing))
def test_a_switch_round_trips_with_its_changes(framing: Framing) -> None:
    client, server = connected_pair(framing)
    event = Switch(3, (b"\x85oJ\x83one", b"\x85oJ\x83two"), more=True)
    wire = client.send(event)
    if framing is Framing.MESSAGE:
        assert wire == (b'\x06{"epoch":3,"changes":["hW9Kg29uZQ==","hW9Kg3R3bw=="],"more":true}')
    server.receive_data(wire)
    assert drain(server) == [event]


def test_the_daemon_may_not_send_a_switch() -> None:
    client, server = connected_pair()
    with pytest.raises(LocalProtocolError):
        server.send(Switch(1))
    client.receive_data(b"\x00\x00\x00\x0d\x06" + b'{"epoch":1}' + b"x")
    with pytest.raises(RemoteProtocolError) as info:
        drain(client)
    assert info.value.code == "bad_frame"


@pytest.mark.parametrize(
    "body",
    [
        b'{"changes":[]}',
        b'{"epoch":"1","changes":[]}',
        b'{"epoch":true,"changes":[]}',
        b'{"epoch":1}',
        b'{"epoch":1,"changes":[1]}',
        b'{"epoch":1,"changes":["not base64!"]}',
        b'{"epoch":1,"changes":[],"more":"yes"}',
    ],
)
def test_a_malformed_switch_is_bad_switch(body: bytes) -> None:
    _, server = connected_pair(Framing.MESSAGE)
    server.receive_data(b"\x06" + body)
    with pytest.raises(RemoteProtocolError) as info:
        drain(server)
    assert info.value.code == "bad_switch"
