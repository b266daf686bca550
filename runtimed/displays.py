"""Display ids of finished cells, so a later `update_display_data` still reaches them.

Jupyter front ends (and nbclient, which keeps one display_id map per notebook) update
every output that carries a display id, whichever cell showed it and whether or not
its execution is still running. Running executions and Output widgets keep their own
logs; this keeps the log of each finished cell whose outputs carry a display id, until
the cell runs again or the kernel goes away. Clearing outputs drops their ids with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .outputs import OutputLog

__all__ = ["FinishedCellUpdate", "FinishedDisplays"]


@dataclass(frozen=True, slots=True)
class FinishedCellUpdate:
    """A finished cell's outputs changed by a display update.

    `before` is what the doc holds if nobody changed the cell's outputs since: the
    room writes `log.entries()` only then, so a client's own edit is never undone.
    """

    cell_id: str
    log: OutputLog
    before: list[str]


class FinishedDisplays:
    """The output logs of finished cells that show at least one display id."""

    def __init__(self) -> None:
        self._logs: dict[str, OutputLog] = {}

    def keep(self, cell_id: str, log: OutputLog) -> None:
        """A cell's execution finished: remember its log while it shows display ids."""
        if log.display_ids():
            self._logs[cell_id] = log
        else:
            self._logs.pop(cell_id, None)

    def forget(self, cell_id: str) -> None:
        """The cell runs again (its outputs are cleared) or was changed by someone else."""
        self._logs.pop(cell_id, None)

    def clear(self) -> None:
        """The kernel that made the display ids is gone."""
        self._logs.clear()

    def update(self, display_id: str, output: dict[str, Any]) -> list[FinishedCellUpdate]:
        """Apply a display update to every finished cell showing `display_id`."""
        updates: list[FinishedCellUpdate] = []
        for cell_id, log in self._logs.items():
            if display_id not in log.display_ids():
                continue
            before = log.entries()
            if log.update_display(display_id, output):
                updates.append(FinishedCellUpdate(cell_id, log, before))
        return updates
