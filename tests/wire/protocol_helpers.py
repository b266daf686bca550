"""Shared helpers for the protocol tests: connected pairs and event draining."""

from __future__ import annotations

from runtimed.wire import (
    NEED_DATA,
    Closed,
    Connection,
    Event,
    Framing,
    Handshake,
    Role,
)

HELLO = {"channel": "notebook", "notebook_id": "nb-1", "snapshot": True}
REPLY = {"ok": True, "protocol": 2, "daemon_version": "0.1.0", "notebook_id": "nb-1"}


def drain(conn: Connection) -> list[Event]:
    """Every event the connection can produce now (up to and including Closed)."""
    events: list[Event] = []
    while (event := conn.next_event()) is not NEED_DATA:
        events.append(event)
        if isinstance(event, Closed):
            break
    return events


def connected_pair(framing: Framing = Framing.STREAM) -> tuple[Connection, Connection]:
    """A client and a server Connection that have completed the handshake."""
    client = Connection(Role.CLIENT, framing=framing)
    server = Connection(Role.SERVER, framing=framing)
    server.receive_data(client.send(Handshake(HELLO)))
    assert drain(server) == [Handshake(HELLO)]
    client.receive_data(server.send(Handshake(REPLY)))
    assert drain(client) == [Handshake(REPLY)]
    assert client.handshake_done
    assert server.handshake_done
    return client, server


def server_after_hello() -> Connection:
    """A STREAM server that has read a client's preamble and hello, and replied ok."""
    _, server = connected_pair()
    return server
