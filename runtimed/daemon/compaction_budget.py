"""When a room's history is over budget (docs/compaction.md, "When").

What history costs the daemon is the bytes its overwritten values keep in memory: a
widget state written 1,000 times holds 1,000 copies, however well the saved file
compresses them (a round of writes to 1,000 sliders is 600 KB in memory and 5 KB on
disk). So the budget weighs the history's uncompressed size (its changes' raw bytes,
about 2.4x less than the memory they hold) against a fresh doc of the same content,
and counts changes besides (each has its own bookkeeping).
"""

from __future__ import annotations

from typing import Final

from notebook_doc import NotebookDoc

# Below this many bytes of history, a compaction is not worth its work (a tiny room
# would otherwise compact on every few widget updates).
MIN_HISTORY: Final = 64 * 1024


class HistoryBudget:
    """The current epoch's history, measured as it grows (only the new changes are read)."""

    def __init__(self, doc: NotebookDoc, *, changes: int, ratio: float) -> None:
        self.ratio = ratio
        self.changes = changes  # changes since the epoch began (as the room counts them)
        self.size = 0  # raw bytes of the epoch's history, up to `_heads`
        self.fresh: int | None = None  # raw bytes of a fresh doc of the content, once known
        self._heads: list[bytes] = []
        self.measure(doc)

    def measure(self, doc: NotebookDoc) -> int:
        """Add the changes `doc` made since the last measure; the history's size."""
        heads = doc.get_heads()
        if heads != self._heads:
            self.size += doc.history_size(self._heads)
            self._heads = heads
        return self.size

    def over(self, doc: NotebookDoc, max_changes: int) -> bool:
        """Over budget: `max_changes` changes, or a history of at least MIN_HISTORY
        bytes over `ratio` times a fresh doc's (or of unknown fresh size: a compaction
        measures it, and is skipped if it would not gain)."""
        if self.changes >= max_changes:
            return True
        size = self.measure(doc)
        if size < MIN_HISTORY:
            return False
        return self.fresh is None or size > self.ratio * self.fresh

    def new_epoch(self, doc: NotebookDoc) -> None:
        """The fresh doc is the room's doc now: its own size is the new baseline."""
        self.changes = 0
        self.size = 0
        self._heads = []
        self.fresh = self.measure(doc)
