"""The protocol modules do no I/O: no sockets, event loops, threads or clocks."""

from __future__ import annotations

import ast
from pathlib import Path
from types import ModuleType

import pytest

import runtimed.wire.events
import runtimed.wire.messages
import runtimed.wire.protocol
from runtimed.wire import Broadcast
from tests.protocol.protocol_helpers import connected_pair

FORBIDDEN = {"asyncio", "socket", "anyio", "selectors", "threading", "time", "trio"}


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


@pytest.mark.parametrize(
    "module", [runtimed.wire.events, runtimed.wire.protocol, runtimed.wire.messages]
)
def test_module_imports_nothing_that_does_io(module: ModuleType) -> None:
    imported = _imported_modules(Path(module.__file__))
    assert imported  # the walk does see the module's imports
    assert not {name.split(".")[0] for name in imported} & FORBIDDEN


def test_messages_depends_only_on_the_wire_events() -> None:
    imported = _imported_modules(Path(runtimed.wire.messages.__file__))
    assert "events" in imported  # `from .events import ...`
    assert not {name for name in imported if name.startswith("runtimed")}


def test_one_broadcast_sent_to_many_peers_is_encoded_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    protocol = runtimed.wire.protocol
    calls = 0
    real = protocol._encode_json

    def counting(value: dict) -> bytes:
        nonlocal calls
        calls += 1
        return real(value)

    monkeypatch.setattr(protocol, "_encode_json", counting)
    servers = [connected_pair()[1] for _ in range(5)]
    calls = 0  # the handshakes above encoded JSON too
    event = Broadcast("comm", {"msg_type": "comm_msg", "content": {"value": 1}})
    frames = {server.send(event) for server in servers}
    assert len(frames) == 1
    assert calls == 1
    # A new event object (even an equal one) is encoded afresh.
    servers[0].send(Broadcast("comm", {"msg_type": "comm_msg", "content": {"value": 2}}))
    assert calls == 2
