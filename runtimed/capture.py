"""Output widgets: outputs captured by an ipywidgets `Output` instead of a cell.

While `with out:` runs, the kernel sets the widget's `msg_id` to the running request,
and every output of that request belongs to the widget (the newest capture wins).
A browser front end would collect them into the widget's `outputs` state and sync it
back to the kernel; the daemon plays that part, so every client, the doc and the
kernel's own `out.outputs` agree. Captures accumulate here; the room's coalesced
flush publishes them (CommState, doc, kernel) at most once per window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .blob_store import BlobStore
from .outputs import OutputLog, encode_output


@dataclass(frozen=True, slots=True)
class CapturedOutputs:
    """What a flush publishes for one Output widget."""

    comm_id: str
    outputs: list[dict[str, Any]]  # the widget state's `outputs` (plain nbformat)
    entries: list[str]  # the doc's `comms[id].outputs` (manifest hashes)


class OutputCapture:
    """One `OutputLog` per Output widget that captured something, and what is unpublished."""

    def __init__(self, blobs: BlobStore) -> None:
        self.blobs = blobs
        self._logs: dict[str, OutputLog] = {}
        self._dirty: set[str] = set()

    def capture(self, comm_id: str, msg: dict[str, Any]) -> bool:
        """Apply an output message the widget captures; True when it changed something."""
        log = self._logs.get(comm_id)
        if log is None:
            log = self._logs[comm_id] = OutputLog(self.blobs, inline_limit=None)
        if log.apply(msg):
            self._dirty.add(comm_id)
            return True
        return False

    def set_from_kernel(self, comm_id: str, outputs: Any) -> None:
        """The kernel set `out.outputs` itself (append_stdout, outputs = ()): start from it."""
        if not isinstance(outputs, list | tuple):
            raise ValueError(f"Output widget {comm_id}: outputs must be a list")
        entries = [encode_output(output, self.blobs, inline_limit=None) for output in outputs]
        self._logs[comm_id] = OutputLog(self.blobs, entries, inline_limit=None)
        self._dirty.add(comm_id)

    def update_display(self, display_id: str, output: dict[str, Any]) -> bool:
        """An `update_display_data`: every captured output carrying `display_id`."""
        changed = False
        for comm_id, log in self._logs.items():
            if log.update_display(display_id, output):
                self._dirty.add(comm_id)
                changed = True
        return changed

    def owns(self, comm_id: str) -> bool:
        """Whether the daemon publishes this widget's outputs (so echoes must not undo it)."""
        return comm_id in self._logs

    def forget(self, comm_id: str) -> None:
        self._logs.pop(comm_id, None)
        self._dirty.discard(comm_id)

    def clear(self) -> None:
        self._logs.clear()
        self._dirty.clear()

    @property
    def pending(self) -> bool:
        return bool(self._dirty)

    def take(self) -> list[CapturedOutputs]:
        """Everything changed since the last call, ready to publish."""
        taken = [
            CapturedOutputs(comm_id, self._logs[comm_id].outputs(), self._logs[comm_id].entries())
            for comm_id in sorted(self._dirty)
        ]
        self._dirty.clear()
        return taken
