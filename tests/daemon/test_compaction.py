"""Compaction over real Unix sockets: the switch, late edits, and every interleaving of
docs/compaction.md that needs no kernel."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path

import nbformat
import pytest

from notebook_doc import NotebookDoc, doc_filename
from runtimed.client import Client, ClientError
from runtimed.config import Settings
from runtimed.daemon.compaction_budget import MIN_HISTORY
from runtimed.wire import Switch
from tests.conftest import RunningDaemon, eventually
from tests.daemon.compaction_helpers import (
    LateClient,
    NaiveClient,
    in_some_draw,
    sources,
    switched,
)


async def shared_cell(a: Client, b: Client, source: str) -> str:
    """A cell `a` adds and `b` has seen: both start from the same doc."""
    cell = a.doc.add_cell(source=source)
    await a.wait_synced()
    await b.wait_for(lambda x: sources(x) == [source], what="both have the cell")
    return cell


def room_of(running: RunningDaemon, notebook_id: str):
    assert running.daemon is not None
    return running.daemon.rooms[notebook_id]


async def converged(*clients: Client, what: str = "converged") -> None:
    async def same() -> None:
        await eventually(
            lambda: all(c.doc.to_json() == clients[0].doc.to_json() for c in clients[1:]),
            what=what,
        )

    await same()


async def test_compact_moves_every_peer_and_keeps_the_content(running: RunningDaemon) -> None:
    async with running.client("nb-c1") as a, running.client("nb-c1") as b:
        cell = a.doc.add_cell(source="x = 1")
        a.doc.set_cell_metadata(cell, {"tags": ["t"]})
        a.doc.update_metadata("kernelspec", {"name": "python3"})
        for i in range(30):
            a.doc.set_source(cell, f"x = {i}")
        await a.wait_synced()
        await b.wait_for(lambda c: sources(c) == ["x = 29"], what="b sees a's edits")
        room = room_of(running, "nb-c1")
        before = room.doc.to_json()
        old_doc = room.doc

        result = await a.request("compact")

        assert result["epoch"] == 1
        assert room.doc is not old_doc
        assert room.doc.to_json() == before
        assert room.doc.change_count() < 5  # the history is gone
        for client in (a, b):
            await client.wait_for(lambda c: switched(c, 1), what="switched")
            assert client.epoch == 1
        # Editing goes on in the new epoch.
        b.doc.set_source(cell, "x = 'after'")
        await b.wait_synced()
        await a.wait_for(lambda c: sources(c) == ["x = 'after'"], what="edit after switch")
        await converged(a, b)
        # A late joiner gets the new epoch.
        async with running.client("nb-c1") as late:
            assert late.epoch == 1
            assert late.doc.to_json() == room.doc.to_json()
    # The file is the new epoch, whole.
    await running.stop()
    path = running.settings.docs_dir / doc_filename("nb-c1")
    saved = NotebookDoc.load(path.read_bytes())
    assert sources_of(saved) == ["x = 'after'"]
    assert saved.change_count() < 10


def sources_of(doc: NotebookDoc) -> list[str]:
    return [cell.source for cell in doc.get_cells()]


async def test_an_unsent_edit_travels_in_the_switch(running: RunningDaemon) -> None:
    async with running.client("nb-c2") as a, running.client("nb-c2") as b:
        cell = await shared_cell(a, b, "hello world")
        b.doc.set_source(cell, "hello brave world")  # made, never pushed before the switch
        await a.request("compact")
        for client in (a, b):
            await client.wait_for(
                lambda c: sources(c) == ["hello brave world"], what="b's unsent edit carried"
            )
        late = [e for e in b.broadcasts if e.event == "switched"]
        assert late[-1].fields["late_changes"] >= 1
        await converged(a, b)


async def test_late_sync_edits_are_carried(running: RunningDaemon) -> None:
    """Interleavings 2, 3 and 4: late source edits (two on one cell), adds, deletes,
    moves and metadata, sent as SYNC against the old epoch after the switch."""

    async def scenario(notebook: str) -> bool:
        return await _late_sync_edits(running, notebook)

    await in_some_draw(scenario, "nb-c3")


async def _late_sync_edits(running: RunningDaemon, notebook: str) -> bool:
    async with (
        running.client(notebook) as a,
        LateClient(notebook, socket_path=running.settings.socket_path) as b,
        LateClient(notebook, socket_path=running.settings.socket_path) as c,
    ):
        one = a.doc.add_cell(source="line one\nline two\n")
        two = a.doc.add_cell(source="second")
        three = a.doc.add_cell(source="third")
        await a.wait_synced()
        for client in (b, c):
            await client.wait_for(lambda x: len(sources(x)) == 3, what="synced")
            # Both sides know each other's heads: a late SYNC then carries its changes
            # (unsure of the daemon's heads, it would only ask, and the changes would
            # come with the SWITCH instead, after the release below).
            await client.wait_synced()
        await a.request("compact")
        await b.held.wait()
        await c.held.wait()
        base_b, base_c = b.doc.fork(), c.doc.fork()
        # b and c have not seen the switch: they edit and sync against epoch 0.
        b.doc.set_source(one, "line one!\nline two\n")
        c.doc.set_source(one, "line one\nline two\nline three\n")
        b.doc.delete_cell(two)
        c.doc.move_cell(three, index=0)
        new_cell = c.doc.add_cell(source="added late")
        b.doc.update_metadata("late", {"by": "b"})
        carried = await asyncio.gather(b.push_carrying(base_b), c.push_carrying(base_c))
        if not all(carried):
            b.release()
            c.release()
            return False
        room = room_of(running, notebook)
        await eventually(
            lambda: room.doc.get_cell(new_cell) is not None and room.doc.get_cell(two) is None,
            what="late edits carried",
        )
        # Meanwhile a, in the new epoch, edits the same cell.
        await a.wait_for(lambda x: x.epoch == 1, what="a switched")
        b.release()
        c.release()
        for client in (a, b, c):
            await client.wait_for(lambda x: switched(x, 1) or x is a, what="switched")
        want = ["third", "line one!\nline two\nline three\n", "added late"]
        for client in (a, b, c):
            await client.wait_for(lambda x: sources(x) == want, what=f"{client.name} converges")
            assert client.doc.get_metadata()["late"] == {"by": "b"}
        await converged(a, b, c)
    return True


async def test_late_edit_placed_by_surrounding_text(running: RunningDaemon) -> None:
    async def scenario(notebook: str) -> bool:
        async with (
            running.client(notebook) as a,
            LateClient(notebook, socket_path=running.settings.socket_path) as b,
        ):
            cell = await shared_cell(a, b, "alpha beta gamma")
            await b.wait_synced()  # so that its late SYNC carries its edit, not asks
            await a.request("compact")
            await b.held.wait()
            await a.wait_for(lambda x: x.epoch == 1, what="a switched")
            a.doc.set_source(cell, "START alpha beta gamma")  # new epoch, before b's edit
            await a.wait_synced()
            base = b.doc.fork()
            b.doc.set_source(cell, "alpha beta gamma END")
            if not await b.push_carrying(base):
                return False
            await a.wait_for(
                lambda x: sources(x) == ["START alpha beta gamma END"], what="both edits kept"
            )
            # Interleaving 10: a client joining during the switch starts in the new epoch.
            async with running.client(notebook) as joiner:
                assert joiner.epoch == 1
                await joiner.wait_for(lambda x: x.doc.to_json() == a.doc.to_json(), what="joined")
            b.release()
            await b.wait_for(lambda x: sources(x) == ["START alpha beta gamma END"], what="b")
            await converged(a, b)
        return True

    await in_some_draw(scenario, "nb-c4")


async def test_a_client_that_merges_the_snapshot_gets_a_clear_error(
    running: RunningDaemon,
) -> None:
    async with (
        running.client("nb-c5") as a,
        NaiveClient("nb-c5", socket_path=running.settings.socket_path) as naive,
    ):
        cell = await shared_cell(a, naive, "x")
        await a.request("compact")
        # Its next SYNC names the new epoch's changes without a SWITCH: refused, loudly.
        naive.doc.set_source(cell, "edit inside the switch")
        with pytest.raises(ClientError) as info:
            await naive.wait_for(lambda x: False, timeout=15, what="dropped")
        assert info.value.code == "compaction_missed"
        assert "not applied" in info.value.message
        await a.wait_for(lambda x: switched(x, 1), what="a switched")
        # The room did not take the merged history.
        room = room_of(running, "nb-c5")
        assert sources_of(room.doc) == ["x"]
        assert room.doc.change_count() < 5


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(settings, compact_deadline=3.0, compact_interval=0.2)


async def test_a_peer_that_never_switches_is_dropped_and_the_next_compaction_runs(
    running: RunningDaemon,
) -> None:
    """Interleavings 7a and 8: a peer never confirms; a second compaction waits for it."""
    async with (
        running.client("nb-c6") as a,
        LateClient("nb-c6", socket_path=running.settings.socket_path) as stuck,
    ):
        a.doc.add_cell(source="x")
        await a.wait_synced()
        await a.request("compact")
        await stuck.held.wait()
        # The second compaction waits for the first switch to end: the deadline drops
        # the peer that never switched, then it runs.
        result = await a.request("compact")
        assert result["epoch"] == 2
        await a.wait_for(lambda x: switched(x, 2), what="a on epoch 2")
        stuck.release(forget=True)  # it reads on, and finds out why it was dropped
        with pytest.raises(ClientError) as info:
            await stuck.wait_for(lambda x: False, timeout=15, what="dropped")
        assert info.value.code == "compaction_timeout"


async def test_a_peer_that_disconnects_mid_switch_keeps_what_it_sent(
    running: RunningDaemon,
) -> None:
    """Interleaving 7b: its late SYNC is carried; leaving ends its part of the switch."""

    async def scenario(notebook: str) -> bool:
        async with running.client(notebook) as a:
            async with LateClient(notebook, socket_path=running.settings.socket_path) as b:
                cell = await shared_cell(a, b, "x")
                await b.wait_synced()  # so that its late SYNC carries its edit, not asks
                await a.request("compact")
                await b.held.wait()
                base = b.doc.fork()
                b.doc.set_source(cell, "x from b, late")
                if not await b.push_carrying(base):
                    return False
                await a.wait_for(lambda x: sources(x) == ["x from b, late"], what="carried")
            room = room_of(running, notebook)
            await eventually(lambda: room.info()["switching"] == 0, what="switch over")
            result = await asyncio.wait_for(a.request("compact"), 2)  # not held back by b
            assert result["epoch"] == 2
        return True

    await in_some_draw(scenario, "nb-c7")


class OldClient(Client):
    protocol_version = 1


async def test_a_client_of_the_older_protocol_gets_the_mismatch_error(
    running: RunningDaemon,
) -> None:
    with pytest.raises(ClientError) as info:
        async with OldClient("nb-c8", socket_path=running.settings.socket_path):
            pass
    assert info.value.code == "unsupported_version"
    assert "client speaks protocol 1, the daemon" in info.value.message
    assert "speaks 2" in info.value.message


async def test_history_over_budget_is_compacted_at_a_quiet_moment(settings: Settings) -> None:
    handle = RunningDaemon(
        dataclasses.replace(settings, compact_changes=40, compact_quiet=0.3, compact_interval=0.5)
    )
    await handle.start()
    try:
        async with handle.client("nb-c9") as a, handle.client("nb-c9") as b:
            cell = a.doc.add_cell(source="")
            for i in range(60):
                a.doc.set_source(cell, f"typing {i}")
                await a.push()
            await a.wait_synced()
            for client in (a, b):
                await client.wait_for(lambda x: x.epoch == 1, 15, what="compacted by budget")
            await converged(a, b)
            assert sources(b) == ["typing 59"]
            info = room_of(handle, "nb-c9").info()
            assert info["last_compaction"]["reason"] == "history over budget"
            assert info["last_compaction"]["changes"] >= 40
            assert info["history"]["changes"] < 40
    finally:
        await handle.stop()


async def test_the_off_switch_stops_automatic_compaction(settings: Settings) -> None:
    handle = RunningDaemon(dataclasses.replace(settings, compaction=False, compact_changes=10))
    await handle.start()
    try:
        async with handle.client("nb-c10") as a:
            cell = a.doc.add_cell(source="")
            for i in range(30):
                a.doc.set_source(cell, f"typing {i}")
                await a.push()
            await a.wait_synced()
            room = room_of(handle, "nb-c10")
            await eventually(lambda: room.info()["history"]["changes"] >= 30, what="counted")
            assert room.compactor.epoch == 0
            assert room.compactor.over_budget()  # over budget, and yet nothing is planned
            assert room.compactor._timer is None
            assert (await a.request("compact"))["epoch"] == 1  # the request still works
    finally:
        await handle.stop()


async def test_a_file_with_history_over_budget_is_compacted_on_load(settings: Settings) -> None:
    doc = NotebookDoc.new("nb-c11")
    cell = doc.add_cell(source="")
    for i in range(150):
        doc.set_source(cell, f"v{i}")
    settings.docs_dir.mkdir(parents=True)
    path = settings.docs_dir / doc_filename("nb-c11")
    path.write_bytes(doc.save())
    handle = RunningDaemon(dataclasses.replace(settings, compact_changes=100))
    await handle.start()
    try:
        async with handle.client("nb-c11") as a:
            room = room_of(handle, "nb-c11")
            await eventually(lambda: room.compactor.epoch == 1, what="compacted on load")
            assert room.info()["last_compaction"]["reason"] == "history over budget on load"
            await a.wait_for(lambda x: x.epoch == 1, what="client moved")
            assert sources(a) == ["v149"]
        await eventually(lambda: NotebookDoc.load(path.read_bytes()).change_count() < 5)
    finally:
        await handle.stop()


async def test_gc_keeps_every_blob_the_compacted_doc_refers_to(running: RunningDaemon) -> None:
    blobs = running.daemon.blobs
    manifest = blobs.put_json(
        {"output_type": "stream", "name": "stdout", "text": "out\n"},
        "application/x-nbformat-output+json",
    )
    orphan = blobs.put(b"nobody needs me")
    async with running.client("nb-c12") as client:
        cell = client.doc.add_cell(source="print('out')")
        client.doc.set_outputs(cell, [manifest])
        await client.wait_synced()
        await client.request("compact")
        async with running.client() as control:
            report = await control.request("gc", min_age=0)
        assert report["blobs_deleted"] == 1
        assert blobs.has(manifest)
        assert not blobs.has(orphan)
        assert room_of(running, "nb-c12").doc.get_outputs(cell) == [manifest]


async def test_a_history_over_twice_a_fresh_doc_is_compacted(settings: Settings) -> None:
    """The size budget: few changes for the count, but a history whose raw size grew
    past `compact_ratio` times a fresh doc's."""
    handle = RunningDaemon(
        dataclasses.replace(
            settings, compact_changes=10**6, compact_quiet=0.1, compact_interval=0.2
        )
    )
    await handle.start()
    try:
        async with handle.client("nb-c13") as a:
            cell = a.doc.add_cell(source="")
            for i in range(120):
                a.doc.set_source(cell, f"{i} " * 40)  # every character rewritten
                await a.push()
            await a.wait_synced()
            await a.wait_for(lambda x: x.epoch == 1, 15, what="compacted by the ratio")
            info = room_of(handle, "nb-c13").info()
            last = info["last_compaction"]
            assert last["history_before"] > 2 * last["history_after"]
            assert last["history_before"] >= MIN_HISTORY
            assert sources(a) == ["119 " * 40]
    finally:
        await handle.stop()


async def test_a_small_room_at_rest_with_a_file_over_twice_a_fresh_doc_is_compacted(
    settings: Settings,
) -> None:
    """Under the memory budget (a history of a few KB), the file still grew past twice
    its content: once the room is at rest it is compacted, and the file follows."""
    handle = RunningDaemon(dataclasses.replace(settings, compact_rest=0.5))
    await handle.start()
    try:
        async with handle.client("nb-c15") as a:
            cell = a.doc.add_cell(source="")
            for i in range(40):
                a.doc.set_source(cell, f"draft {i} " * 4)
                await a.push()
            await a.wait_synced()
            await a.wait_for(lambda x: x.epoch == 1, 15, what="compacted at rest")
            room = room_of(handle, "nb-c15")
            last = room.info()["last_compaction"]
            assert last["reason"] == "file over budget at rest"
            assert last["history_before"] < MIN_HISTORY  # the memory budget had no say
            assert last["bytes_before"] > 2 * last["bytes_after"]
            path = handle.settings.docs_dir / doc_filename("nb-c15")
            fresh = len(room.doc.save())
            await eventually(lambda: len(path.read_bytes()) <= 2 * fresh, what="small file")
            assert sources(a) == ["draft 39 " * 4]
    finally:
        await handle.stop()


async def test_a_switch_with_no_compaction_pending_is_refused(running: RunningDaemon) -> None:
    async with running.client("nb-c14") as a:
        await a._write(a._conn.send(Switch(5)))
        with pytest.raises(ClientError) as info:
            await a.wait_for(lambda x: False, timeout=15, what="dropped")
        assert info.value.code == "bad_switch"
        assert "expected none" in info.value.message


async def test_a_disk_edit_after_a_compaction_still_merges_with_unsaved_edits(
    settings: Settings, tmp_path: Path
) -> None:
    """The fresh doc holds the version the .ipynb last had: the autosave's merge base
    survives the compaction, so an edit on disk merges with the room's unsaved one."""
    handle = RunningDaemon(
        dataclasses.replace(settings, autosave_quiet=60.0, file_watch_interval=0.1)
    )
    await handle.start()
    path = tmp_path / "compacted.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("first = 1"), nbformat.v4.new_code_cell("second = 2")]
    nb.cells[0].id, nb.cells[1].id = "c1", "c2"
    nbformat.write(nb, str(path))
    try:
        async with handle.client(str(path), path=str(path)) as client:
            client.doc.set_source("c1", "first = 'client'")  # not saved yet: a long quiet
            await client.wait_synced()
            await client.request("compact")
            nb.cells[1].source = "second = 'disk'"
            nbformat.write(nb, str(path))
            want = ["first = 'client'", "second = 'disk'"]
            await client.wait_for(lambda c: sources(c) == want, 15, "the disk edit merged")
    finally:
        await handle.stop()
