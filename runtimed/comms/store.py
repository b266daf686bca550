"""CommStore: the one place where a comm event changes the room's comm state.

A room keeps every comm twice: in CommState (merged at once, what `get_comms` and
`comm_sync` answer from) and in the doc's `comms` map (coalesced, what a sync-only
client sees). Output widgets add a third piece, the captured outputs. Each event the
daemon knows of (a kernel's open, update or close; a client's update the kernel took;
a reconcile plan; a clear; a flush) is one method here that keeps all of them in step
and returns what the room broadcasts, so "both stores always agree" is written once.

The store never writes the doc outside `flush`, which the room calls: the room stays
the doc's only writer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from notebook_doc import NotebookDoc

from ..blob_store import BlobStore
from ..wire import Broadcast
from .capture import OutputCapture
from .comm_state import (
    OUTPUT_MODEL,
    CommEntry,
    CommState,
    CommUpdate,
    parse_comm_close,
    parse_comm_open,
    parse_comm_update,
    to_wire,
)
from .mirror import CommMirror, state_from_doc
from .reconcile import WIDGET_TARGET, Plan


def comm_broadcast(msg_type: str, content: dict[str, Any], buffers: Sequence[bytes]) -> Broadcast:
    """protocol.md's `comm` broadcast: the kernel's message, buffers base64 beside it.

    The buffers stay bytes here: the frame's JSON encoder writes bytes as base64 itself,
    in one pass (a 5 MB image took 8 ms to base64 and 2 more to encode the string,
    against 4 ms straight from bytes)."""
    return Broadcast("comm", {"msg_type": msg_type, "content": content, "buffers": list(buffers)})


@dataclass(slots=True)
class Flushed:
    """What one flush did: whether the doc changed, and Output-widget states the kernel
    must hear (the daemon plays the browser's part of syncing `outputs` back)."""

    doc_changed: bool = False
    to_kernel: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    storage_error: OSError | None = None  # the blob store's disk failed; still dirty


class CommStore:
    """CommState, the doc mirror and Output capture, changed together, one event at a time."""

    def __init__(
        self,
        doc: NotebookDoc,
        blobs: BlobStore,
        *,
        schedule: Callable[[], None],
        on_storage_error: Callable[[OSError], None] | None = None,
        spawn: Callable[..., None] | None = None,
    ) -> None:
        self.doc = doc
        self.blobs = blobs
        self.state = CommState()
        self.capture = OutputCapture(blobs)
        self._schedule = schedule
        # `spawn`: where new blobs are written off the loop (none: in place).
        self.mirror = CommMirror(
            doc,
            self.state,
            blobs=blobs,
            schedule=schedule,
            on_storage_error=on_storage_error,
            spawn=spawn,
        )

    # --- reading -----------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.state)

    def __contains__(self, comm_id: object) -> bool:
        return comm_id in self.state

    def get(self, comm_id: str) -> CommEntry | None:
        return self.state.get(comm_id)

    def snapshot(self) -> list[dict[str, Any]]:
        """Every live comm as protocol.md's CommSnapshot, in seq order."""
        return [to_wire(entry) for entry in self.state.get_all()]

    def sync_event(self) -> Broadcast:
        """The `comm_sync` broadcast a joiner (or a lagging peer) starts from."""
        return Broadcast("comm_sync", {"comms": self.snapshot()})

    def capture_target(self, parent_msg_id: str) -> str | None:
        return self.state.capture_target(parent_msg_id) if parent_msg_id else None

    # --- events ------------------------------------------------------------------------

    def restore_saved(self) -> None:
        """Widgets saved with the doc (or imported from an .ipynb) are live state until a
        kernel starts: CommState takes them too, so comm_sync and the doc agree."""
        for comm in self.doc.get_comms():
            state, buffers = state_from_doc(comm.state, self.blobs)
            self.state.restore(
                CommEntry(
                    comm_id=comm.comm_id,
                    target_name=comm.target_name,
                    model_module=comm.model_module,
                    model_name=comm.model_name,
                    state=state,
                    buffers=buffers,
                    seq=comm.seq,
                    outputs=list(comm.outputs),
                )
            )

    def kernel_open(self, content: Any, buffers: Sequence[bytes]) -> Broadcast:
        """A kernel's `comm_open`; CommMessageError when it is malformed (nothing changes)."""
        opened = parse_comm_open(content, buffers)
        self.state.on_comm_open(
            opened.comm_id,
            opened.target_name,
            opened.data,
            buffer_paths=opened.buffer_paths,
            buffers=opened.buffers,
        )
        self.mirror.opened(opened.comm_id)
        return comm_broadcast("comm_open", content, buffers)

    def kernel_update(self, content: Any, buffers: Sequence[bytes]) -> tuple[Broadcast, bool]:
        """A kernel's `comm_msg`: state merged when it carries some, broadcast either way;
        True beside it when the state was for a comm the store never heard of (a loss).

        An Output widget's `outputs` are the capture's business: the kernel setting them
        (`update`) restarts the capture from them; our own publication echoed back
        (`echo_update`) must not undo what the capture has done since.
        """
        update = parse_comm_update(content, buffers)
        entry = self.state.get(update.comm_id) if update is not None else None
        if update is not None and entry is not None:
            state = update.state
            if entry.model_name == OUTPUT_MODEL and "outputs" in state:
                if content["data"]["method"] == "update":
                    self.capture.set_from_kernel(update.comm_id, state["outputs"])
                    self._schedule()
                elif self.capture.owns(update.comm_id):
                    state = {k: v for k, v in state.items() if k != "outputs"}
            self.state.on_comm_update(
                update.comm_id, state, buffer_paths=update.buffer_paths, buffers=update.buffers
            )
            self.mirror.updated(update.comm_id)
        return comm_broadcast("comm_msg", content, buffers), update is not None and entry is None

    def kernel_close(self, content: Any) -> Broadcast:
        """A kernel's `comm_close`: gone from every store."""
        comm_id = parse_comm_close(content)
        self.capture.forget(comm_id)
        if self.state.on_comm_close(comm_id) is not None:
            self.mirror.closed(comm_id)
        return comm_broadcast("comm_close", content, [])

    def client_update(self, update: CommUpdate) -> None:
        """A client's `send_comm` the kernel already took. No broadcast: ipywidgets echoes
        it (echo_update), and the echo is broadcast in kernel order."""
        if self.state.on_comm_update(
            update.comm_id, update.state, buffer_paths=update.buffer_paths, buffers=update.buffers
        ):
            self.mirror.updated(update.comm_id)

    def capture_output(self, comm_id: str, msg: dict[str, Any]) -> None:
        """An output an Output widget captures; published by the next flush."""
        if self.capture.capture(comm_id, msg):
            self._schedule()

    def update_display(self, display_id: str, output: dict[str, Any]) -> None:
        """An `update_display_data` reaching outputs Output widgets captured."""
        if self.capture.update_display(display_id, output):
            self._schedule()

    def apply_plan(self, plan: Plan) -> list[Broadcast]:
        """Bring every store to the kernel's own answer, as live messages would."""
        events: list[Broadcast] = []
        for widget in plan.added:
            paths = [list(path) for path in widget.buffers]
            data = {"state": widget.state, "buffer_paths": paths}
            buffers = list(widget.buffers.values())
            self.state.on_comm_open(
                widget.comm_id, WIDGET_TARGET, data, buffer_paths=paths, buffers=buffers
            )
            self.mirror.opened(widget.comm_id)
            content = {"comm_id": widget.comm_id, "target_name": WIDGET_TARGET, "data": data}
            events.append(comm_broadcast("comm_open", content, buffers))
        for widget in plan.updated:
            entry = self.state.replace_state(widget.comm_id, widget.state, widget.buffers)
            if entry is not None and entry.model_name == OUTPUT_MODEL:
                self.capture.set_from_kernel(widget.comm_id, widget.state.get("outputs", []))
            self.mirror.updated(widget.comm_id)
            paths = [list(path) for path in widget.buffers]
            data = {"method": "update", "state": widget.state, "buffer_paths": paths}
            content = {"comm_id": widget.comm_id, "data": data}
            events.append(comm_broadcast("comm_msg", content, list(widget.buffers.values())))
        for comm_id in plan.removed:
            self.state.on_comm_close(comm_id)
            self.capture.forget(comm_id)
            self.mirror.closed(comm_id)
            events.append(comm_broadcast("comm_close", {"comm_id": comm_id, "data": {}}, []))
        return events

    def clear(self) -> Broadcast:
        """Restart, shutdown or death: every comm goes, from every store, and peers hear so."""
        self.state.clear()
        self.capture.clear()
        self.mirror.cleared()
        return Broadcast("comm_sync", {"comms": []})

    def replace_doc(self, doc: NotebookDoc) -> None:
        """Compaction swapped the room's doc for one with the same content: write there."""
        self.doc = self.mirror.doc = doc

    def resync_doc(self) -> None:
        """The doc's comms were damaged (a schema repair): rewrite them from CommState."""
        self.mirror.resync_all()

    def flush(self) -> Flushed:
        """Publish captured outputs, then write every dirty comm into the doc.

        A blob-store failure (OSError) leaves what was dirty dirty, for a later flush.
        """
        flushed = Flushed()
        for captured in self.capture.take():
            state = {"outputs": captured.outputs}
            if self.state.on_comm_update(captured.comm_id, state) is None:
                continue
            self.state.set_outputs(captured.comm_id, captured.entries)
            self.mirror.updated(captured.comm_id)
            data = {"method": "update", "state": state, "buffer_paths": []}
            flushed.to_kernel.append((captured.comm_id, data))
        try:
            flushed.doc_changed = self.mirror.flush()
        except OSError as exc:
            flushed.storage_error = exc
        return flushed

    async def drain(self) -> None:
        """Wait for blob writes in flight; the last flush (on close) then writes in place."""
        await self.mirror.drain()
        self.mirror.in_background = False
