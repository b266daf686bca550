"""Rooms over a real Unix socket: convergence, late joiners, presence, persistence."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import nbformat
import pytest

from notebook_doc import NotebookDoc, doc_filename
from runtimed.client import ClientError
from tests.conftest import RunningDaemon, eventually


def sources(client) -> list[str]:
    return [cell.source for cell in client.doc.get_cells()]


async def test_two_clients_editing_converge(running: RunningDaemon) -> None:
    async with running.client("nb-converge") as a, running.client("nb-converge") as b:
        cell = a.doc.add_cell(source="x = 1")
        await a.push()
        await b.wait_for(lambda c: sources(c) == ["x = 1"], what="b sees a's cell")
        # Concurrent edits to the same cell from both sides both survive.
        a.doc.set_source(cell, "x = 1\n# from a")
        b.doc.set_source(cell, "# from b\nx = 1")
        await asyncio.gather(a.push(), b.push())
        expected = "# from b\nx = 1\n# from a"
        await a.wait_for(lambda c: sources(c) == [expected], what="a converges")
        await b.wait_for(lambda c: sources(c) == [expected], what="b converges")
        assert a.doc.to_json() == b.doc.to_json()


async def test_late_joiner_converges_from_snapshot_and_from_plain_sync(
    running: RunningDaemon,
) -> None:
    async with running.client("nb-late") as writer:
        for i in range(50):
            writer.doc.add_cell(source=f"cell {i}")
        await writer.wait_synced()
        expected = writer.doc.to_json()
    async with running.client("nb-late", snapshot=True) as snap:
        assert snap.doc.to_json() == expected  # loaded from SNAPSHOT before the client returns
        events = [e.event for e in snap.broadcasts]
        assert events == ["trust", "kernel_status"]  # no comm_sync: no comms live
    async with running.client("nb-late", snapshot=False) as plain:
        await plain.wait_for(lambda c: c.doc.to_json() == expected, what="plain sync")


async def test_join_sequence_order_is_snapshot_sync_then_kernel_status(
    running: RunningDaemon,
) -> None:
    async with running.client("nb-order") as client:
        assert client.handshake["ok"] is True
        assert client.handshake["protocol"] == 2
        assert client.handshake["notebook_id"] == "nb-order"
        assert client.kernel_status == "none"
        assert client.broadcasts[-1].event == "kernel_status"


async def test_fifty_clients_on_one_room_converge(running: RunningDaemon) -> None:
    clients = [running.client("nb-fifty", name=f"c{i}") for i in range(50)]
    await asyncio.gather(*(c.connect() for c in clients))
    try:
        for i, client in enumerate(clients):
            client.doc.add_cell(source=f"from {i}")
        await asyncio.gather(*(c.push() for c in clients))
        want = {f"from {i}" for i in range(50)}
        for client in clients:
            await client.wait_for(lambda c: set(sources(c)) == want, 30, "all 50 cells")
        views = [c.doc.to_json() for c in clients]
        assert all(view == views[0] for view in views)
    finally:
        await asyncio.gather(*(c.aclose() for c in clients))


async def test_presence_is_relayed_to_the_other_peers_only(running: RunningDaemon) -> None:
    async with running.client("nb-presence") as a, running.client("nb-presence") as b:
        await a.send_presence({"cursor": {"cell": "x", "offset": 3}})
        await b.wait_for(lambda c: c.presence, what="presence at b")
        assert b.presence[0]["cursor"] == {"cell": "x", "offset": 3}
        assert b.presence[0]["peer_id"]
        assert not a.presence


async def test_a_client_keeps_only_its_latest_presence(running: RunningDaemon) -> None:
    async with (
        running.client("nb-presence-cap") as a,
        running.client("nb-presence-cap", history=5) as b,
    ):
        for offset in range(20):
            await a.send_presence({"cursor": {"cell": "x", "offset": offset}})
        await b.wait_for(lambda c: c.presence and c.presence[-1]["cursor"]["offset"] == 19)
        assert [p["cursor"]["offset"] for p in b.presence] == [15, 16, 17, 18, 19]


async def test_daemon_restart_brings_every_room_back(running: RunningDaemon) -> None:
    for name in ("nb-one", "nb-two"):
        async with running.client(name) as client:
            client.doc.add_cell(source=f"in {name}")
            await client.wait_synced()
    await running.stop()
    docs = running.settings.docs_dir
    assert (docs / doc_filename("nb-one")).exists()
    # What a daemon killed in the middle of a save leaves behind.
    leftover = docs / f".{doc_filename('nb-one')}.k1ll3d.tmp"
    leftover.write_bytes(b"half a doc")
    await running.start()
    assert not leftover.exists()
    for name in ("nb-one", "nb-two"):
        async with running.client(name) as client:
            assert sources(client) == [f"in {name}"]


async def test_edits_are_saved_after_the_debounce_without_a_shutdown(
    running: RunningDaemon,
) -> None:
    path = running.settings.docs_dir / doc_filename("nb-debounce")
    async with running.client("nb-debounce") as client:
        client.doc.add_cell(source="saved soon")
        await client.wait_synced()

        def saved() -> bool:
            if not path.exists():
                return False
            doc = NotebookDoc.load(path.read_bytes())
            return [c.source for c in doc.get_cells()] == ["saved soon"]

        await eventually(saved, what="the debounced save")
    leftovers = [p for p in path.parent.iterdir() if p.name != path.name]
    assert not [p for p in leftovers if ".tmp" in p.name]


async def test_corrupt_doc_file_is_quarantined_and_the_room_opens(
    running: RunningDaemon,
) -> None:
    await running.stop()
    path = running.settings.docs_dir / doc_filename("nb-corrupt")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x85\x6f\x4a\x83 this is not automerge")
    await running.start()
    async with running.client("nb-corrupt") as client:
        assert client.doc.get_cells() == []
    quarantined = path.with_name(path.name + ".corrupt")
    assert quarantined.read_bytes().startswith(b"\x85\x6f\x4a\x83 this is not")


async def test_room_opens_from_ipynb_and_saves_back(running: RunningDaemon, tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Title"), nbformat.v4.new_code_cell("print(1)")]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    path = tmp_path / "demo.ipynb"
    nbformat.write(nb, str(path))
    async with running.client(str(path), path=str(path)) as client:
        assert sources(client) == ["# Title", "print(1)"]
        client.doc.add_cell(source="y = 2")
        await client.wait_synced()
        result = await client.request("save")
        assert result["path"] == str(path)
    saved = nbformat.read(str(path), as_version=4)
    nbformat.validate(saved)
    assert [c.source for c in saved.cells] == ["# Title", "print(1)", "y = 2"]
    assert saved.metadata["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("bad", ["relative.ipynb", "/tmp/not-a-notebook.txt", "/no/dir/x.ipynb"])
async def test_save_refuses_relative_and_non_ipynb_paths(running: RunningDaemon, bad: str) -> None:
    async with running.client("nb-paths") as client:
        with pytest.raises(ClientError) as caught:
            await client.request("save", path=bad)
        assert caught.value.code == "bad_path"
        assert not Path(bad).exists()


async def test_control_channel_lists_rooms_and_daemon_info(running: RunningDaemon) -> None:
    async with running.client("nb-listed") as _room_client, running.client() as control:
        assert (await control.request("ping"))["pong"] is True
        info = await control.request("daemon_info")
        assert info["pid"] == os.getpid()
        assert info["socket"] == str(running.settings.socket_path)
        rooms = (await control.request("list_rooms"))["rooms"]
        assert [r["notebook_id"] for r in rooms] == ["nb-listed"]
        assert rooms[0]["peers"] == 1
        json.dumps(info)  # plain JSON all the way down
