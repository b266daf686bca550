"""The daemon answers bad bytes as protocol.md says, and other clients never notice.

These tests speak the wire protocol by hand over a raw Unix socket, byte for byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import stat
import struct
from dataclasses import replace

import pytest

from runtimed.config import Settings
from runtimed.daemon.server import Daemon, DaemonAlreadyRunning
from tests.conftest import RunningDaemon

PREAMBLE = b"\xc0\xde\x01\xac\x02"


def frame(payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + payload


def typed(type_byte: int, body: dict | bytes) -> bytes:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return frame(bytes([type_byte]) + raw)


class Raw:
    """A hand-driven connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, running: RunningDaemon) -> Raw:
        reader, writer = await asyncio.open_unix_connection(str(running.settings.socket_path))
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def read_frame(self) -> bytes:
        header = await asyncio.wait_for(self.reader.readexactly(4), 10)
        (length,) = struct.unpack(">I", header)
        return await asyncio.wait_for(self.reader.readexactly(length), 10)

    async def read_until_broadcast(self, event: str) -> dict:
        while True:
            body = await self.read_frame()
            if body[0] == 0x03:
                message = json.loads(body[1:])
                if message["event"] == event:
                    return message

    async def at_eof(self) -> bool:
        data = await asyncio.wait_for(self.reader.read(), 10)
        return data == b""

    async def join(self, notebook_id: str) -> dict:
        hello = {"channel": "notebook", "notebook_id": notebook_id, "snapshot": False}
        await self.send(PREAMBLE + frame(json.dumps(hello).encode()))
        reply = json.loads(await self.read_frame())
        assert reply["ok"] is True, reply
        await self.read_until_broadcast("kernel_status")
        return reply


@pytest.fixture
async def raws(running: RunningDaemon):
    """Opens hand-driven connections and closes them all at the end."""
    opened: list[Raw] = []

    async def open_raw() -> Raw:
        raw = await Raw.open(running)
        opened.append(raw)
        return raw

    yield open_raw
    for raw in opened:
        raw.writer.close()
        with contextlib.suppress(Exception):
            await raw.writer.wait_closed()


async def assert_other_client_still_works(running: RunningDaemon) -> None:
    async with running.client("bystander") as client:
        client.doc.add_cell(source="still here")
        await client.wait_synced()
        assert (await client.request("get_comms"))["comms"] == []


@pytest.mark.parametrize(
    ("preamble", "code"),
    [(b"GET /", "bad_preamble"), (b"\xc0\xde\x01\xac\x01", "unsupported_version")],
)
async def test_bad_preamble_gets_a_handshake_error_and_a_close(
    running: RunningDaemon, raws, preamble: bytes, code: str
) -> None:
    async with running.client("bystander") as _bystander:
        raw = await raws()
        await raw.send(preamble.ljust(5, b"\x00"))
        reply = json.loads(await raw.read_frame())
        assert reply == {"ok": False, "error": {"code": code, "message": reply["error"]["message"]}}
        assert reply["error"]["message"]
        assert await raw.at_eof()
        await assert_other_client_still_works(running)


async def test_bad_handshake_is_refused_with_a_reason(running: RunningDaemon, raws) -> None:
    raw = await raws()
    await raw.send(PREAMBLE + frame(b'{"channel": "notebook"}'))
    reply = json.loads(await raw.read_frame())
    assert reply["ok"] is False
    assert reply["error"]["code"] == "bad_handshake"
    assert "notebook_id" in reply["error"]["message"]
    assert await raw.at_eof()


async def test_oversized_frame_is_a_fatal_error_without_reading_the_body(
    running: RunningDaemon,
    raws,
) -> None:
    raw = await raws()
    await raw.join("nb-big")
    await raw.send(struct.pack(">I", 16 * 1024 * 1024 + 1))  # no body follows
    error = await raw.read_until_broadcast("error")
    assert error["code"] == "frame_too_large"
    assert error["fatal"] is True
    assert await raw.at_eof()
    await assert_other_client_still_works(running)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b"\x09{}", "bad_frame"),  # unknown type byte
        (b"\x01{not json", "bad_frame"),  # a REQUEST that does not parse
        (b"\x01\xff\xfe", "bad_frame"),  # invalid UTF-8
        (b"\x00" + b"not an automerge sync message", "bad_sync"),
    ],
)
async def test_bad_frames_after_handshake_close_only_that_connection(
    running: RunningDaemon, raws, body: bytes, code: str
) -> None:
    async with running.client("nb-bad") as other:
        raw = await raws()
        await raw.join("nb-bad")
        await raw.send(frame(body))
        error = await raw.read_until_broadcast("error")
        assert (error["code"], error["fatal"]) == (code, True)
        assert await raw.at_eof()
        other.doc.add_cell(source="unharmed")
        await other.wait_synced()
        assert [c.source for c in other.doc.get_cells()] == ["unharmed"]


async def test_bad_request_gets_an_error_response_and_the_connection_stays(
    running: RunningDaemon,
    raws,
) -> None:
    raw = await raws()
    await raw.join("nb-requests")
    cases = [
        ({"id": 1, "action": "fly_to_the_moon"}, "unknown_action"),
        ({"id": 2, "action": "execute_cell", "cell_id": 5}, "bad_request"),
        ({"id": 3, "action": "execute_cell"}, "bad_request"),
        ({"id": 4, "action": "execute", "code": "1"}, "no_kernel"),
        ({"id": "five", "action": "get_blob", "hash": "../../etc/passwd"}, "bad_request"),
    ]
    for request, code in cases:
        await raw.send(typed(0x01, request))
        while True:
            body = await raw.read_frame()
            if body[0] == 0x02:
                break
        response = json.loads(body[1:])
        assert response["id"] == request["id"]
        assert response["ok"] is False
        assert response["error"]["code"] == code, response
        assert response["error"]["message"]
    await raw.send(typed(0x01, {"id": 9, "action": "get_comms"}))
    while (body := await raw.read_frame())[0] != 0x02:
        pass
    assert json.loads(body[1:]) == {"id": 9, "ok": True, "result": {"comms": []}}


async def test_client_vanishing_mid_frame_leaves_the_room_working(
    running: RunningDaemon,
    raws,
) -> None:
    raw = await raws()
    await raw.join("nb-vanish")
    await raw.send(struct.pack(">I", 1000) + b"\x01{")  # half a frame, then gone
    raw.writer.close()
    async with running.client("nb-vanish") as client:
        client.doc.add_cell(source="fine")
        await client.wait_synced()


async def test_socket_is_private_to_its_owner(running: RunningDaemon) -> None:
    path = running.settings.socket_path
    assert stat.S_IMODE(os.stat(path.parent).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_ISSOCK(os.stat(path).st_mode)


async def test_second_daemon_on_a_live_socket_is_refused(running: RunningDaemon) -> None:
    second = Daemon(running.settings)
    with pytest.raises(DaemonAlreadyRunning, match="already listening"):
        await second.serve()
    await assert_other_client_still_works(running)


async def test_stale_socket_from_a_dead_daemon_is_replaced(running: RunningDaemon) -> None:
    await running.stop()
    import socket as socket_module

    path = running.settings.socket_path
    dead = socket_module.socket(socket_module.AF_UNIX, socket_module.SOCK_STREAM)
    dead.bind(str(path))  # bound but never listening: what a killed daemon leaves
    dead.close()
    assert path.exists()
    await running.start()
    await assert_other_client_still_works(running)


async def test_a_connection_that_never_says_hello_is_closed(settings: Settings) -> None:
    quick = RunningDaemon(replace(settings, handshake_timeout=0.3))
    await quick.start()
    try:
        raw = Raw(*await asyncio.open_unix_connection(str(settings.socket_path)))
        await raw.send(PREAMBLE + b"\x00\x00")  # a preamble and half a length, then silence
        reply = json.loads(await raw.read_frame())
        assert reply["error"]["code"] == "bad_handshake"
        assert "no handshake" in reply["error"]["message"]
        assert await raw.at_eof()
        raw.writer.close()
    finally:
        await quick.stop()
