"""The user's .ipynb across a SIGKILL: an edit the stored copy holds but the file does
not yet is neither lost nor taken for an edit made on disk; one made on disk meanwhile
is merged with it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import nbformat

from notebook_doc import NotebookDoc, NotebookDocError, doc_filename
from tests.conftest import eventually
from tests.reliability.conftest import DaemonProcess


def sources(path: Path) -> list[str]:
    try:
        return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"]]
    except (OSError, ValueError):
        return []


def stored_source(stored: Path, cell_id: str) -> str | None:
    try:
        cell = NotebookDoc.load(stored.read_bytes()).get_cell(cell_id)
    except (OSError, NotebookDocError):
        return None
    return cell.source if cell is not None else None


async def test_a_kill_between_stored_copy_and_autosave_loses_nothing(
    daemon_process: Callable[..., DaemonProcess], tmp_path: Path
) -> None:
    path = tmp_path / "killed.ipynb"
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("a = 1"), nbformat.v4.new_code_cell("b = 1")]
    nb.cells[0].id, nb.cells[1].id = "a", "b"
    nbformat.write(nb, str(path))
    # Autosave waits ten minutes: the kill comes after the stored copy, before the file.
    daemon = daemon_process(autosave_quiet=600.0, autosave_max_delay=600.0)
    await daemon.start()
    stored = daemon.settings.docs_dir / doc_filename(str(path))
    async with daemon.client(str(path), path=str(path)) as client:
        client.doc.set_source("a", "a = 'room'")
        await client.wait_synced()
        await eventually(lambda: stored_source(stored, "a") == "a = 'room'")
    daemon.kill()
    assert sources(path) == ["a = 1", "b = 1"]
    nb.cells[1].source = "b = 'disk'"  # and someone edits the file meanwhile
    nbformat.write(nb, str(path))

    restarted = daemon_process()
    await restarted.start()
    async with restarted.client(str(path), path=str(path)) as client:
        assert [c.source for c in client.doc.get_cells()] == ["a = 'room'", "b = 'disk'"]
    await eventually(lambda: sources(path) == ["a = 'room'", "b = 'disk'"], timeout=30)
    restarted.stop()
