"""Debounced, atomic saving of a room's doc.

A save waits for `debounce` seconds of quiet, but never lets a dirty doc wait longer
than `max_interval` under constant change. The doc's bytes are taken on the event
loop (the doc has one owner); the file write and fsync run in a worker thread so a
slow disk never stalls the room. Saves are serialised: the newest bytes always win.

Most saves append: the file is the last full `save()` followed by the changes made
since (Automerge loads a saved doc followed by changes as one doc), while those stay
under half the full save's size; then a full save again. A full save recompresses
the whole doc with the GIL held (35 ms for 100 cells and 1,000 widgets on the loaded
development machine); appending three rounds of writes to those widgets took 3.7 ms.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog

from notebook_doc import NotebookDoc, atomic_write

from .debounce import Debouncer

log = structlog.get_logger(__name__)

# A save appends the changes since the last full save while they stay under this share
# of that save's size (the file stays under 1.5 times a full save).
APPEND_SHARE: Final = 0.5


@dataclass(slots=True)
class _Written:
    """What the file holds: a full save of `doc`, then changes up to `heads`."""

    doc: NotebookDoc
    base: bytes
    tail: bytes
    heads: list[bytes]


class DocPersister:
    """Owns the timing and the failures of one doc's file."""

    def __init__(
        self,
        doc: NotebookDoc,
        path: Path,
        *,
        debounce: float,
        max_interval: float,
        on_error: Callable[[str], None] | None = None,
        before_save: Callable[[], Callable[[], object]] | None = None,
        spawn: Callable[..., None],
    ) -> None:
        self.doc = doc
        self.path = path
        self.max_interval = max_interval
        self._on_error = on_error
        self._before_save = before_save
        self._debounce = Debouncer(self._fire, quiet=debounce, max_delay=max_interval)
        self._spawn = spawn  # the room's task group: a save due runs there
        self._lock = asyncio.Lock()
        self._saved_heads: list[bytes] | None = None
        self._written: _Written | None = None  # None: the next save is a full one
        self.saves = 0
        self.saved_bytes: int | None = None  # the size of the last save (the history's cost)
        self.last_error: str | None = None

    def changed(self) -> None:
        """The doc changed: (re)arm the debounce, bounded by the max interval."""
        self._debounce.poke()

    def held(self) -> contextlib.AbstractContextManager[None]:
        """Debounced saves wait while held (a compaction writes the next epoch whole)."""
        return self._debounce.held()

    def _fire(self) -> None:
        self._spawn(self.save)

    async def save(self, saved: tuple[list[bytes], bytes] | None = None) -> bool:
        """Write the doc now if it differs from the file; False if the write failed.

        `saved`: (heads, bytes) of the doc at some heads, already made (a compaction's
        snapshot): written at once, then saved again the usual way after the debounce.
        """
        self._debounce.cancel()
        heads = self.doc.get_heads()
        if saved is not None:
            heads, data = saved
            self.changed()  # a save() form follows (smaller, and whatever came since)
        elif heads == self._saved_heads and self.path.exists():
            return True
        # e.g. trust signatures, read here and stored (a database commit) in the worker
        # thread before the doc they vouch for.
        store = self._before_save() if self._before_save is not None else None
        written = None if saved is not None else self._append(heads)
        if written is not None:
            data = written.base + written.tail
        elif saved is None:
            data = self.doc.save()
            written = _Written(self.doc, data, b"", heads)
        async with self._lock:
            try:
                await asyncio.to_thread(_store_and_write, store, self.path, data)
            except OSError as exc:
                message = f"could not save {self.path}: {exc.strerror or exc}"
                self.last_error = message
                log.error("save_failed", path=str(self.path), error=str(exc))
                if self._on_error is not None:
                    self._on_error(message)
                # Try again later (the change is only in memory), not in a tight loop.
                self._debounce.arm(self.max_interval)
                return False
        self._saved_heads = heads
        self._written = written  # a compaction's snapshot is no base: a full save next
        self.saved_bytes = len(data)
        self.saves += 1
        self.last_error = None
        log.debug("saved", path=str(self.path), bytes=len(data))
        return True

    def _append(self, heads: list[bytes]) -> _Written | None:
        """The file as the last one plus the changes since, if it may still grow."""
        last = self._written
        if last is None or last.doc is not self.doc:  # a compaction replaced the doc
            return None
        new = b"".join(self.doc.get_changes_since(last.heads))
        if len(last.tail) + len(new) > APPEND_SHARE * len(last.base):
            return None
        return _Written(last.doc, last.base, last.tail + new, heads)

    def cancel(self) -> None:
        """Drop a pending save (the doc is not to be stored)."""
        self._debounce.close()

    async def close(self) -> bool:
        """Final save on shutdown or room close (after any save in flight: one lock)."""
        self._debounce.close()
        return await self.save()


def _store_and_write(store: Callable[[], object] | None, path: Path, data: bytes) -> None:
    if store is not None:
        store()
    atomic_write(path, data)
