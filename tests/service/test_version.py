"""A client and a daemon that speak different protocol versions: a clear error, both ways."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from runtimed.client import Client, ClientError
from runtimed.wire import NEED_DATA, Connection, Handshake, Role
from runtimed.wire.events import PROTOCOL_VERSION
from tests.conftest import short_socket_dir
from tests.service.conftest import Service


class FutureClient(Client):
    """A client from a release whose protocol is newer than this daemon's."""

    protocol_version = PROTOCOL_VERSION + 1


async def test_a_newer_client_is_told_to_restart_the_daemon(service: Service) -> None:
    await asyncio.to_thread(service.cli, "start")
    with pytest.raises(ClientError) as caught:
        async with FutureClient("nb", socket_path=service.socket):
            pass
    error = caught.value
    assert error.code == "unsupported_version"
    assert error.message == (
        f"client speaks protocol {PROTOCOL_VERSION + 1}, the daemon at {service.socket} "
        f"speaks {PROTOCOL_VERSION}: restart the "
        "daemon from this installation: `runtimed stop && runtimed start`"
    )
    # The refusal hurt nothing: the daemon still serves clients of its own version.
    async with Client(socket_path=service.socket) as client:
        assert (await client.request("ping"))["pong"] is True


@contextlib.asynccontextmanager
async def daemon_speaking(version: int) -> AsyncIterator[Path]:
    """A stand-in for a newer daemon: it refuses every hello as a version-`version`
    daemon would, over the real framing (`protocol.Connection`)."""
    sock_dir = short_socket_dir()
    path = sock_dir / "newer.sock"

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = Connection(Role.SERVER)
        while (event := conn.next_event()) is NEED_DATA:
            conn.receive_data(await reader.read(65536))
        assert isinstance(event, Handshake)
        writer.write(
            conn.error_frame(
                "unsupported_version",
                f"protocol {event.payload['protocol']} is not supported "
                f"(this daemon speaks {version})",
            )
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_unix_server(refuse, path=str(path))
    try:
        yield path
    finally:
        server.close()
        await server.wait_closed()
        path.unlink(missing_ok=True)
        sock_dir.rmdir()


async def test_an_older_client_is_told_to_upgrade() -> None:
    async with daemon_speaking(PROTOCOL_VERSION + 1) as path:
        with pytest.raises(ClientError) as caught:
            async with Client(socket_path=path):
                pass
    assert caught.value.code == "unsupported_version"
    assert caught.value.message.startswith(
        f"client speaks protocol {PROTOCOL_VERSION}, the daemon at {path} "
        f"speaks {PROTOCOL_VERSION + 1}: upgrade this client"
    )
