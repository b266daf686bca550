"""Per-peer sync bookkeeping, so callers of `NotebookDoc` never import automerge."""

from __future__ import annotations

from . import _automerge

__all__ = ["SyncState"]


class SyncState:
    """What one peer is known to have; use a fresh one per peer and per connection."""

    __slots__ = ("_state",)

    def __init__(self) -> None:
        self._state = _automerge.SyncState()
