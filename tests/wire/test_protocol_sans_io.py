"""The sans-I/O Connection shared by many peers (the import rules are in tests/layout)."""

from __future__ import annotations

import pytest

import runtimed.wire.frames
from runtimed.wire import Broadcast
from tests.wire.protocol_helpers import connected_pair


def test_one_broadcast_sent_to_many_peers_is_encoded_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frames = runtimed.wire.frames
    calls = 0
    real = frames.encode_json

    def counting(value: dict) -> bytes:
        nonlocal calls
        calls += 1
        return real(value)

    monkeypatch.setattr(frames, "encode_json", counting)
    servers = [connected_pair()[1] for _ in range(5)]
    calls = 0  # the handshakes above encoded JSON too
    event = Broadcast("comm", {"msg_type": "comm_msg", "content": {"value": 1}})
    frames = {server.send(event) for server in servers}
    assert len(frames) == 1
    assert calls == 1
    # A new event object (even an equal one) is encoded afresh.
    servers[0].send(Broadcast("comm", {"msg_type": "comm_msg", "content": {"value": 2}}))
    assert calls == 2
