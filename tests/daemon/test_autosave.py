"""The user's .ipynb, with real files and a real daemon: autosave, edits made on disk,
no phantom notebooks, modes and symlinks."""

from __future__ import annotations

import dataclasses
import json
import os
import stat
from pathlib import Path

import nbformat
import pytest

from runtimed.client import Client, ClientError
from runtimed.config import Settings
from tests.conftest import RunningDaemon, eventually


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings,
        autosave_quiet=0.2,
        autosave_max_delay=2.0,
        autosave_retry=0.3,
        file_watch_interval=0.2,  # a disk edit shows up within 0.2 s, not 2 s
    )


def write_notebook(path: Path, sources: list[str], ids: list[str] | None = None) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(source) for source in sources]
    for cell, cell_id in zip(nb.cells, ids or [], strict=False):
        cell.id = cell_id
    nbformat.write(nb, str(path))


def file_sources(path: Path) -> list[str]:
    try:
        nb = json.loads(path.read_text())
    except (OSError, ValueError):
        return []
    return ["".join(cell["source"]) for cell in nb["cells"]]


def doc_sources(client: Client) -> list[str]:
    return [cell.source for cell in client.doc.get_cells()]


def save_state(client: Client) -> str | None:
    states = [b.fields["state"] for b in client.broadcasts if b.event == "save_state"]
    return states[-1] if states else None


def open_file(running: RunningDaemon, path: Path, **kwargs: object) -> Client:
    return running.client(str(path), path=str(path), **kwargs)


async def add_cell_then_stop(running: RunningDaemon, path: Path, source: str) -> None:
    """A client adds a cell; the daemon stops (and so saves the file)."""
    async with open_file(running, path) as client:
        client.doc.add_cell(source=source)
        await client.wait_synced()
    await running.stop()


async def both_hold(client: Client, path: Path, expected: list[str]) -> None:
    """The doc (as this client sees it) and the file end with these sources."""
    await client.wait_for(lambda c: doc_sources(c) == expected, timeout=15)
    await eventually(lambda: file_sources(path) == expected, timeout=15)


async def nothing_left(running: RunningDaemon) -> None:
    """No room, and nothing stored in the data dir."""
    assert running.daemon is not None
    await eventually(lambda: not running.daemon.rooms, what="rooms closed")
    async with running.client() as control:
        assert (await control.request("list_rooms"))["rooms"] == []
    docs = running.settings.docs_dir
    assert not docs.exists() or not list(docs.glob("*"))


async def test_edits_reach_the_file_within_the_autosave_bound(
    running: RunningDaemon, tmp_path: Path
) -> None:
    path = tmp_path / "demo.ipynb"
    write_notebook(path, ["a = 1"])
    async with open_file(running, path) as client:
        states = client.subscribe()
        client.doc.add_cell(source="b = 2")
        await client.wait_synced()
        # Polled, with the bound (max delay) plus slack as the deadline.
        bound = running.settings.autosave_max_delay + 5
        await eventually(lambda: file_sources(path) == ["a = 1", "b = 2"], timeout=bound)
        await client.wait_for(lambda c: save_state(c) == "saved")
        seen = []
        while not states.empty():
            event = states.get_nowait()
            if event.event == "save_state":
                seen.append(event.fields["state"])
        assert seen[0] == "modified"
        assert "saving" in seen
        assert seen[-1] == "saved"


async def test_edits_reach_the_file_when_the_daemon_stops(
    settings: Settings, tmp_path: Path
) -> None:
    slow = RunningDaemon(dataclasses.replace(settings, autosave_quiet=600, autosave_max_delay=600))
    await slow.start()
    path = tmp_path / "stop.ipynb"
    write_notebook(path, ["x = 1"])
    try:
        async with open_file(slow, path) as client:
            client.doc.add_cell(source="y = 2")
            await client.wait_synced()
            assert file_sources(path) == ["x = 1"]  # not yet: the quiet spell is long
    finally:
        await slow.stop()
    assert file_sources(path) == ["x = 1", "y = 2"]


async def test_disk_edit_and_a_client_edit_both_end_in_doc_and_file(
    running: RunningDaemon, tmp_path: Path
) -> None:
    path = tmp_path / "both.ipynb"
    write_notebook(path, ["first = 1", "second = 2"], ids=["c1", "c2"])
    async with open_file(running, path) as client:
        # Another editor changes the second cell and adds one...
        write_notebook(path, ["first = 1", "second = 'disk'", "third = 3"], ids=["c1", "c2", "c3"])
        # ...while the client edits the first.
        client.doc.set_source("c1", "first = 'client'")
        await client.wait_synced()
        expected = ["first = 'client'", "second = 'disk'", "third = 3"]
        await both_hold(client, path, expected)


async def test_a_disk_edit_shows_up_while_nobody_edits(
    running: RunningDaemon, tmp_path: Path
) -> None:
    path = tmp_path / "watched.ipynb"
    write_notebook(path, ["x = 1"], ids=["c1"])
    async with open_file(running, path) as client, open_file(running, path) as other:
        write_notebook(path, ["x = 'vim'"], ids=["c1"])
        for peer in (client, other):
            await peer.wait_for(lambda c: doc_sources(c) == ["x = 'vim'"], timeout=15)


async def test_no_autosave_writes_only_on_request(settings: Settings, tmp_path: Path) -> None:
    manual = RunningDaemon(dataclasses.replace(settings, autosave=False))
    await manual.start()
    path = tmp_path / "manual.ipynb"
    write_notebook(path, ["x = 1"], ids=["c1"])
    try:
        async with open_file(manual, path) as client:
            client.doc.add_cell(source="y = 2")
            await client.wait_synced()
            await client.wait_for(lambda c: save_state(c) == "modified")
            [joined] = [b for b in client.broadcasts if b.event == "save_state"][:1]
            assert joined.fields["autosave"] is False
            # A disk edit still comes in; the room's own change still waits.
            write_notebook(path, ["x = 'disk'"], ids=["c1"])
            await client.wait_for(lambda c: doc_sources(c) == ["x = 'disk'", "y = 2"])
            assert file_sources(path) == ["x = 'disk'"]
            await client.request("save")
            assert file_sources(path) == ["x = 'disk'", "y = 2"]
            client.doc.add_cell(source="z = 3")
            await client.wait_synced()
    finally:
        await manual.stop()
    assert file_sources(path) == ["x = 'disk'", "y = 2"]  # not on stop either


async def test_concurrent_edits_to_one_cell_merge_as_text(
    running: RunningDaemon, tmp_path: Path
) -> None:
    path = tmp_path / "text.ipynb"
    write_notebook(path, ["line 1\nline 2\nline 3"], ids=["c1"])
    async with open_file(running, path) as client:
        write_notebook(path, ["line 1\nline 2 (disk)\nline 3"], ids=["c1"])
        client.doc.set_source("c1", "line 1 (client)\nline 2\nline 3")
        await client.wait_synced()
        expected = ["line 1 (client)\nline 2 (disk)\nline 3"]
        await both_hold(client, path, expected)


async def test_cells_moved_and_removed_on_disk(running: RunningDaemon, tmp_path: Path) -> None:
    path = tmp_path / "moved.ipynb"
    write_notebook(path, ["a", "b", "c", "d"], ids=["a", "b", "c", "d"])
    async with open_file(running, path) as client:
        write_notebook(path, ["d", "a", "c"], ids=["d", "a", "c"])
        client.doc.add_cell(source="e", cell_id="e")
        await client.wait_synced()
        await both_hold(client, path, ["d", "a", "c", "e"])


async def test_a_file_without_cell_ids_is_matched_by_position(
    running: RunningDaemon, tmp_path: Path
) -> None:
    path = tmp_path / "old.ipynb"
    old = {"nbformat": 4, "nbformat_minor": 4, "metadata": {}}

    def cell(source: str) -> dict:
        return {
            "cell_type": "code",
            "source": source,
            "metadata": {},
            "outputs": [],
            "execution_count": None,
        }

    path.write_text(json.dumps({**old, "cells": [cell("a = 1"), cell("b = 1")]}))
    async with open_file(running, path) as client:
        ids = client.doc.cell_ids()
        path.write_text(json.dumps({**old, "cells": [cell("a = 1"), cell("b = 'disk'")]}))
        client.doc.set_source(ids[0], "a = 'client'")
        await client.wait_synced()
        expected = ["a = 'client'", "b = 'disk'"]
        assert client.doc.cell_ids() == ids  # the same cells, edited: not replaced
        await both_hold(client, path, expected)


async def test_file_replaced_while_the_daemon_is_down(
    running: RunningDaemon, tmp_path: Path
) -> None:
    path = tmp_path / "replaced.ipynb"
    write_notebook(path, ["old = 1"])
    await add_cell_then_stop(running, path, "old = 2")
    assert file_sources(path) == ["old = 1", "old = 2"]
    write_notebook(path, ["new = 1", "new = 2", "new = 3"])  # git pull, another editor
    await running.start()
    async with open_file(running, path) as client:
        assert doc_sources(client) == ["new = 1", "new = 2", "new = 3"]
    assert file_sources(path) == ["new = 1", "new = 2", "new = 3"]


async def test_an_unmergeable_disk_version_is_kept_beside_the_file(
    running: RunningDaemon, tmp_path: Path
) -> None:
    path = tmp_path / "conflict.ipynb"
    write_notebook(path, ["mine = 1"])
    await add_cell_then_stop(running, path, "mine = 2")
    # The record of the last written version names history the doc does not have.
    [record] = running.settings.docs_dir.glob("*.file.json")
    raw = json.loads(record.read_text())
    raw["heads"] = ["00" * 32]
    record.write_text(json.dumps(raw))
    write_notebook(path, ["theirs = 1"])
    await running.start()
    async with open_file(running, path) as client:
        # The room opened before anyone could hear an error: its save state says it.
        [joined] = [b for b in client.broadcasts if b.event == "save_state"]
        assert doc_sources(client) == ["mine = 1", "mine = 2"]
    [copy] = tmp_path.glob("conflict.disk-*.ipynb")
    assert joined.fields["kept_copy"] == str(copy)
    assert file_sources(copy) == ["theirs = 1"]
    await eventually(lambda: file_sources(path) == ["mine = 1", "mine = 2"])


async def test_a_file_broken_on_disk_is_kept_beside_and_rewritten(
    running: RunningDaemon, tmp_path: Path
) -> None:
    path = tmp_path / "broken.ipynb"
    write_notebook(path, ["x = 1"])
    async with open_file(running, path) as client:
        path.write_text('{"cells": [')  # an editor's half-written save, say
        await client.wait_for(
            lambda c: any(b.fields.get("code") == "disk_conflict" for b in c.broadcasts),
            timeout=15,
        )
        assert doc_sources(client) == ["x = 1"]
    [copy] = tmp_path.glob("broken.disk-*.ipynb")
    assert copy.read_text() == '{"cells": ['
    await eventually(lambda: file_sources(path) == ["x = 1"])


@pytest.mark.parametrize("name", ["nope.ipynb", "no/such/dir/x.ipynb"])
async def test_a_typo_fails_and_leaves_nothing_behind(
    running: RunningDaemon, tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    with pytest.raises(ClientError) as caught:
        async with open_file(running, path):
            pass
    assert caught.value.code in ("no_such_notebook", "bad_path")
    assert str(path) in caught.value.message
    assert not path.exists()
    await nothing_left(running)


async def test_create_makes_the_file_with_the_umask_mode(
    running: RunningDaemon, tmp_path: Path
) -> None:
    path = tmp_path / "new.ipynb"
    old = os.umask(0o027)  # the in-process daemon's umask too
    try:
        async with open_file(running, path, create=True):
            await eventually(lambda: path.exists())
    finally:
        os.umask(old)
    assert file_sources(path) == []
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


async def test_an_untitled_room_that_was_never_used_leaves_no_stored_copy(
    running: RunningDaemon,
) -> None:
    async with running.client("scratch-typo"):
        pass
    await nothing_left(running)


async def test_a_failed_attach_leaves_no_room_and_no_stored_copy(
    running: RunningDaemon, tmp_path: Path
) -> None:
    junk = tmp_path / "kernel-junk.json"
    junk.write_text("{not a connection file")
    async with running.client("attach-typo", create=True) as client:
        with pytest.raises(ClientError) as caught:
            await client.request("attach_kernel", connection_file=str(junk))
        assert caught.value.code == "bad_connection_file"
    await nothing_left(running)


async def test_saving_keeps_the_mode_and_writes_through_a_symlink(
    running: RunningDaemon, tmp_path: Path
) -> None:
    real = tmp_path / "real"
    real.mkdir()
    target = real / "target.ipynb"
    write_notebook(target, ["x = 1"])
    target.chmod(0o640)
    link = tmp_path / "link.ipynb"
    link.symlink_to(target)
    async with open_file(running, link) as client:
        client.doc.add_cell(source="y = 2")
        await client.wait_synced()
        await client.request("save")
    assert link.is_symlink()
    assert link.resolve() == target
    assert file_sources(target) == ["x = 1", "y = 2"]
    assert stat.S_IMODE(target.stat().st_mode) == 0o640
    assert [p.name for p in real.iterdir()] == ["target.ipynb"]  # no temp file left


async def test_a_failed_save_is_an_error_and_is_retried(
    running: RunningDaemon, tmp_path: Path
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    path = folder / "retry.ipynb"
    write_notebook(path, ["x = 1"])
    async with open_file(running, path) as client:
        moved = tmp_path / "moved-away"
        folder.rename(moved)  # the disk refuses every write into the folder now
        client.doc.add_cell(source="y = 2")
        await client.wait_synced()
        await client.wait_for(
            lambda c: any(b.fields.get("code") == "save_failed" for b in c.broadcasts),
            timeout=15,
        )
        failed = [b for b in client.broadcasts if b.fields.get("state") == "failed"]
        assert failed
        assert str(path) in failed[-1].fields["reason"]
        folder.mkdir()  # the disk is back: a retry saves
        await eventually(lambda: file_sources(path) == ["x = 1", "y = 2"], timeout=15)
        await client.wait_for(lambda c: save_state(c) == "saved")
