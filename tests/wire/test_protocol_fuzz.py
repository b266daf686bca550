"""Fuzzing: whatever bytes arrive, a Connection yields events or a ProtocolError, nothing else."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_helpers import HELLO, REPLY, drain

from runtimed.wire import (
    Broadcast,
    Closed,
    Connection,
    ErrorInfo,
    Event,
    Framing,
    Handshake,
    Presence,
    RemoteProtocolError,
    Request,
    Response,
    Role,
    Snapshot,
    Sync,
)

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=4)
request_ids = st.integers(min_value=-(2**63), max_value=2**63) | st.text(max_size=10)


def _without(*keys: str) -> st.SearchStrategy[dict]:
    return json_objects.map(lambda d: {k: v for k, v in d.items() if k not in keys})


client_events = st.one_of(
    st.builds(Sync, st.binary(max_size=64)),
    st.builds(Request, request_ids, st.text(max_size=12), _without("id", "action")),
    st.builds(Presence, json_objects),
)
server_events = st.one_of(
    st.builds(Sync, st.binary(max_size=64)),
    st.builds(Snapshot, st.binary(max_size=64)),
    st.builds(Response, request_ids | st.none(), st.just(True), json_objects),
    st.builds(
        Response,
        request_ids | st.none(),
        st.just(False),
        st.none(),
        st.builds(ErrorInfo, st.text(max_size=10), st.text(max_size=20)),
    ),
    st.builds(Broadcast, st.text(max_size=12), _without("event")),
    st.builds(Presence, json_objects),
)
roles_and_framings = st.sampled_from(list(itertools.product(Role, Framing)))


def _feed_all(conn: Connection, chunks: list[bytes]) -> None:
    """Feed non-empty chunks then EOF: only events then a clean close, or a sticky
    RemoteProtocolError; any other exception fails the test."""
    try:
        for chunk in [*filter(None, chunks), b""]:
            conn.receive_data(chunk)
            drain(conn)
    except RemoteProtocolError as error:
        first = error
    else:
        assert conn.next_event() == Closed()
        return
    with pytest.raises(RemoteProtocolError) as again:
        conn.next_event()
    assert again.value is first


def _events_of(role: Role) -> st.SearchStrategy[Event]:
    return client_events if role is Role.CLIENT else server_events


def _session(role: Role, events: list[Event]) -> tuple[list[bytes], list[Event]]:
    """What a peer of `role` writes (STREAM framing) for its handshake and `events`,
    one item per frame (the client's first carries the preamble), and the events the
    receiver should read."""
    sender = Connection(role)
    if role is Role.SERVER:
        sender.receive_data(Connection(Role.CLIENT).send(Handshake(HELLO)))
        drain(sender)
    first = Handshake(HELLO if role is Role.CLIENT else REPLY)
    return [sender.send(first), *(sender.send(e) for e in events)], [first, *events]


def _receiver_of(role: Role) -> Connection:
    """A STREAM connection ready to read what a peer of `role` writes from its start."""
    receiver = Connection(Role.SERVER if role is Role.CLIENT else Role.CLIENT)
    if role is Role.SERVER:
        receiver.send(Handshake(HELLO))
    return receiver


@FUZZ
@given(roles_and_framings, st.lists(st.binary(max_size=40), max_size=8))
def test_random_bytes_yield_events_or_a_protocol_error(
    role_and_framing: tuple[Role, Framing], chunks: list[bytes]
) -> None:
    role, framing = role_and_framing
    _feed_all(Connection(role, framing=framing), chunks)


@FUZZ
@given(st.sampled_from(list(Role)), st.lists(st.binary(max_size=40), max_size=8))
def test_random_bytes_after_a_valid_handshake(sender: Role, chunks: list[bytes]) -> None:
    handshake, _ = _session(sender, [])
    _feed_all(_receiver_of(sender), [*handshake, *chunks])


@FUZZ
@given(st.data())
def test_valid_stream_cut_anywhere_yields_the_whole_frames_then_an_error_or_close(
    data: st.DataObject,
) -> None:
    role = data.draw(st.sampled_from(list(Role)))
    events = data.draw(
        st.lists(client_events if role is Role.CLIENT else server_events, max_size=6)
    )
    frames, expected = _session(role, events)
    preamble = 5 if role is Role.CLIENT else 0
    wire = b"".join(frames)
    cut = data.draw(st.integers(min_value=0, max_value=len(wire)))
    ends = list(itertools.accumulate(len(f) for f in frames))
    whole = sum(1 for end in ends if end <= cut)
    receiver = _receiver_of(role)
    receiver.receive_data(wire[:cut])
    receiver.receive_data(b"")
    if cut in {0, preamble, *ends}:
        assert drain(receiver) == [*expected[:whole], Closed()]
    else:
        with pytest.raises(RemoteProtocolError) as error:
            drain(receiver)
        assert error.value.code == ("bad_preamble" if cut < preamble else "bad_frame")


@FUZZ
@given(st.data())
def test_valid_stream_with_random_corruption_yields_events_or_a_protocol_error(
    data: st.DataObject,
) -> None:
    role = data.draw(st.sampled_from(list(Role)))
    events = data.draw(
        st.lists(client_events if role is Role.CLIENT else server_events, max_size=5)
    )
    wire = bytearray(b"".join(_session(role, events)[0]))
    for _ in range(data.draw(st.integers(min_value=1, max_value=4))):
        at = data.draw(st.integers(min_value=0, max_value=len(wire) - 1))
        wire[at] = data.draw(st.integers(min_value=0, max_value=255))
    split = data.draw(st.integers(min_value=0, max_value=len(wire)))
    _feed_all(_receiver_of(role), [bytes(wire[:split]), bytes(wire[split:])])


@FUZZ
@given(st.data())
def test_random_events_round_trip_in_both_framings(data: st.DataObject) -> None:
    framing = data.draw(st.sampled_from(list(Framing)))
    to_server = data.draw(st.lists(client_events, max_size=4))
    to_client = data.draw(st.lists(server_events, max_size=4))
    client = Connection(Role.CLIENT, framing=framing)
    server = Connection(Role.SERVER, framing=framing)
    server.receive_data(client.send(Handshake(HELLO)))
    assert drain(server) == [Handshake(HELLO)]
    client.receive_data(server.send(Handshake(REPLY)))
    for event in to_server:
        server.receive_data(client.send(event))
    for event in to_client:
        client.receive_data(server.send(event))
    assert drain(server) == to_server
    assert drain(client) == [Handshake(REPLY), *to_client]


@FUZZ
@given(st.lists(st.binary(min_size=0, max_size=30), max_size=6), st.sampled_from(list(Role)))
def test_random_websocket_messages_yield_events_or_a_protocol_error(
    messages: list[bytes], role: Role
) -> None:
    conn = Connection(role, framing=Framing.MESSAGE)
    if role is Role.CLIENT:
        conn.send(Handshake(HELLO))
    _feed_all(conn, messages)
