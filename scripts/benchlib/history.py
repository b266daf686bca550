"""What history costs, shared by the cases that measure compaction (3, 5, stream, stall).

A late join timed from connecting to holding some content, the size of a fresh doc
with the same content (what a compacted room's file is compared to), and a line about
the room's compactions from `daemon_info`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from notebook_doc import NotebookDoc
from notebook_doc.compaction import build_fresh, read_content
from runtimed.config import Settings

from .observe import wait_true
from .procs import DaemonProcess

MB = 1024 * 1024


async def join_seconds(
    daemon: DaemonProcess, notebook: str, ready: Callable[[NotebookDoc], bool], *, snapshot: bool
) -> float:
    """From connecting to a doc for which `ready` holds."""
    start = time.perf_counter()
    async with daemon.client(notebook, snapshot=snapshot, name="bench-late-joiner") as client:
        await client.wait_for(lambda c: ready(c.doc), 120, "the full state")
        return time.perf_counter() - start


def fresh_size(doc: NotebookDoc) -> int:
    """The saved size of a doc holding exactly `doc`'s content and no history."""
    return len(build_fresh(read_content(doc)).save())


async def settled(daemon: DaemonProcess, notebook: str, since: float) -> dict[str, Any]:
    """The room's `daemon_info` entry once a compaction after `since` (unix time) has
    switched, or once the daemon's quiet period and interval, and its rest, have passed
    without one (the room is under budget): what a joiner meets when the room has come to rest."""
    defaults = Settings()
    wait = max(defaults.compact_quiet + defaults.compact_interval, defaults.compact_rest)
    deadline = time.monotonic() + wait + 5
    while True:
        room = await daemon.room_info(notebook)
        last = room["last_compaction"]
        if last and last["at"] >= since and not room["switching"]:
            return room
        if time.monotonic() > deadline:
            return room
        await asyncio.sleep(0.25)


def compactions_note(room: dict[str, Any]) -> str:
    """The room's epoch, history and last compaction, as `daemon_info` reports them."""
    history = room["history"]
    line = (
        f"compaction: epoch {room['epoch']} at the end, {history['changes']} changes since "
        f"(last save {(history['bytes'] or 0) / MB:.2f} MB)"
    )
    last = room["last_compaction"]
    if last:
        line += (
            f"; last compaction ({last['reason']}): {last['changes']} changes, "
            f"{last['bytes_before'] / MB:.2f} -> {last['bytes_after'] / MB:.2f} MB "
            f"in {last['duration'] * 1000:.0f} ms"
        )
    return line


async def saved_doc(docs_dir: Path, ready: Callable[[NotebookDoc], bool]) -> bytes:
    """The room's file once the debounced save has caught up with what `ready` wants."""

    def on_disk() -> bool:
        files = list(docs_dir.glob("*.automerge"))
        return bool(files) and ready(NotebookDoc.load(files[0].read_bytes()))

    await wait_true(on_disk, 60, "the saved doc to hold the final state", interval=0.5)
    return next(docs_dir.glob("*.automerge")).read_bytes()


class CompactionLog:
    """Polls the room's `daemon_info` entry every second: every compaction's report
    (each epoch lasts longer than that), so the changes of all epochs add up."""

    def __init__(self, daemon: DaemonProcess, notebook: str, interval: float = 1.0) -> None:
        self.daemon = daemon
        self.notebook = notebook
        self.interval = interval
        self.compactions: dict[int, dict[str, Any]] = {}  # epoch -> its compaction report
        self.room: dict[str, Any] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> CompactionLog:
        self._task = asyncio.get_running_loop().create_task(self._poll())
        return self

    async def _poll(self) -> None:
        while True:
            await self.sample()
            await asyncio.sleep(self.interval)

    async def sample(self) -> None:
        self.room = await self.daemon.room_info(self.notebook)
        last = self.room["last_compaction"]
        if last:
            self.compactions.setdefault(last["epoch"], last)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.sample()

    @property
    def total_changes(self) -> int:
        """Every doc change the room made: the compacted epochs' and the current one's."""
        compacted = sum(c["changes"] for c in self.compactions.values())
        return compacted + self.room["history"]["changes"]

    @property
    def missed(self) -> int:
        """Compactions that came and went between two polls (their changes are not counted)."""
        return self.room["epoch"] - len(self.compactions)
