"""SIGKILL the daemon while it compacts, again and again (before and after the file's
rename, by chance of timing): the room file always loads, and every edit older than
the save window is in it."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import random
import time
from collections.abc import Callable

from notebook_doc import NotebookDoc, doc_filename
from runtimed.client import ClientError
from tests.reliability.conftest import DaemonProcess

ROUNDS = 8
SAVE_MAX_INTERVAL = 0.5
WINDOW = SAVE_MAX_INTERVAL + 1.0  # the save window, and slack for a loaded machine
NOTEBOOK = "nb-compact-crash"


async def edit_and_compact(
    daemon: DaemonProcess, round_: int, acked: list[tuple[float, str]]
) -> None:
    """Add cells (each acknowledged by the daemon) and force compactions, until killed."""
    async with daemon.client(NOTEBOOK) as client:
        cell = client.doc.add_cell(source="")
        for n in itertools.count():
            source = f"round {round_} edit {n}"
            client.doc.set_source(cell, source)  # history for the budget
            client.doc.add_cell(source=source)
            await client.wait_synced()
            acked.append((time.monotonic(), source))
            if n % 3 == 0:
                with contextlib.suppress(ClientError):
                    await client.request("compact")


async def test_sigkills_during_compaction_lose_nothing_older_than_the_save_window(
    daemon_process: Callable[..., DaemonProcess],
) -> None:
    daemon = daemon_process(
        save_debounce=0.05,
        save_max_interval=SAVE_MAX_INTERVAL,
        compact_changes=20,
        compact_quiet=0.0,
        compact_interval=0.0,
    )
    path = daemon.settings.docs_dir / doc_filename(NOTEBOOK)
    kept: set[str] = set()  # due at an earlier kill, and found on disk then
    for round_ in range(ROUNDS):
        acked: list[tuple[float, str]] = []
        await daemon.start()
        work = asyncio.create_task(edit_and_compact(daemon, round_, acked))
        await asyncio.sleep(random.uniform(2.0, 4.0))  # the moment of the kill, by chance
        daemon.kill()
        killed_at = time.monotonic()
        with contextlib.suppress(ClientError, ConnectionError):
            await work
        saved = NotebookDoc.load(path.read_bytes())  # never a corrupt or partial file
        on_disk = {cell.source for cell in saved.get_cells()}
        due = kept | {source for t, source in acked if t < killed_at - WINDOW}
        missing = sorted(due - on_disk)
        assert not missing, f"round {round_}: {missing[:5]} acknowledged and not on disk"
        kept = due
        assert not list(daemon.settings.docs_dir.glob("*.corrupt"))
    assert len(kept) > ROUNDS  # the check was not vacuous
    compactions = sum(1 for entry in daemon.logs() if entry.get("event") == "compacted")
    assert compactions >= ROUNDS, compactions  # the kills did land among compactions
