"""The client's reader: one task the Client owns from `connect` to `aclose`."""

from __future__ import annotations

import asyncio
import shutil

import pytest

from runtimed.client import Client, ClientError
from tests.conftest import RunningDaemon, eventually, short_socket_dir


def readers(name: str) -> list[asyncio.Task]:
    return [t for t in asyncio.all_tasks() if t.get_name() == f"client reader {name}"]


async def test_the_reader_runs_from_connect_to_aclose(running: RunningDaemon) -> None:
    client = running.client("nb-life", name="life")
    assert readers("life") == []
    await client.connect()
    try:
        assert len(readers("life")) == 1
        assert (await client.request("get_comms"))["comms"] == []
    finally:
        await client.aclose()
    assert readers("life") == []
    with pytest.raises(ClientError) as closed:
        await client.request("get_comms")
    assert closed.value.code == "closed"
    await client.aclose()  # idempotent


async def test_connect_and_aclose_may_run_in_different_tasks(running: RunningDaemon) -> None:
    """As a fixture's set-up and teardown do, or `wait_for` around connect: its own
    task connects, and the test's task edits, syncs and closes."""
    client = running.client("nb-tasks", name="tasks")
    await asyncio.wait_for(client.connect(), 30)
    try:
        client.doc.add_cell(source="x")
        await client.wait_synced()
    finally:
        await asyncio.create_task(client.aclose())
    assert readers("tasks") == []
    async with running.client("nb-tasks") as other:
        assert [cell.source for cell in other.doc.get_cells()] == ["x"]


async def test_a_second_connect_is_a_clear_error(running: RunningDaemon) -> None:
    async with running.client("nb-twice", name="twice") as client:
        with pytest.raises(ClientError) as again:
            await client.connect()
        assert again.value.code == "connected"
        assert len(readers("twice")) == 1
    assert readers("twice") == []


async def test_the_reader_ends_by_itself_when_the_daemon_goes(running: RunningDaemon) -> None:
    async with running.client("nb-gone", name="gone") as client:
        await running.stop()
        await eventually(lambda: readers("gone") == [], what="the reader's end")
        with pytest.raises(ClientError):
            await client.request("get_comms")


async def test_a_daemon_that_never_answers_the_handshake_is_a_timeout() -> None:
    path = short_socket_dir() / "mute.sock"
    accepted: list[asyncio.StreamWriter] = []

    async def hold(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # accepted, never answered

    server = await asyncio.start_unix_server(hold, path=str(path))
    try:
        client = Client("nb-mute", socket_path=path, timeout=0.5, name="mute")
        with pytest.raises(ClientError) as caught:
            await client.connect()
        assert caught.value.code == "timeout"
        assert "did not answer the handshake within 0.5 s" in caught.value.message
        assert readers("mute") == []
    finally:
        for writer in accepted:
            writer.close()
        server.close()
        await server.wait_closed()
        shutil.rmtree(path.parent, ignore_errors=True)
