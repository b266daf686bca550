"""NotebookRoom: one notebook's doc and its peers.

Its parts live beside it: who is in it, joining and leaving, and its close once nobody
uses it (room_occupancy.py), the kernel binding (room_kernel.py), the files
(room_files.py), the requests (room_requests.py), compaction (compaction.py).

Everything that changes the doc runs synchronously on the event loop, without an
`await` in between, so the room is the doc's only writer and needs no locks: client
sync messages, coalesced kernel writes and requests all apply whole, in order.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from notebook_doc import NotebookDoc, NotebookDocError

from ..blob_store import BlobStore
from ..comms.coalesce import Coalescer
from ..comms.reconcile import Plan
from ..comms.store import CommStore
from ..config import Settings
from ..kernel import KernelError, KernelSession
from ..outputs import OutputLog
from ..trust import Notary, RoomTrust
from ..wire import Broadcast, Switch
from .broadcast_log import BroadcastLog
from .compaction import Compactor
from .iopub import Execution
from .memory import TrimRequests
from .peer import Peer
from .room_files import StorageAlarm, notebook_saver, save_on_close, stored_copy
from .room_kernel import KernelBinding
from .room_occupancy import Occupancy
from .room_requests import RoomRequests
from .tasks import TaskOwner

log = structlog.get_logger(__name__)

# Trust is recomputed at most this often (seconds) while the doc changes.
TRUST_REFRESH = 0.1


class NotebookRoom:
    """The unit of collaboration: one doc, many peers, at most one kernel."""

    def __init__(
        self,
        notebook_id: str,
        doc: NotebookDoc,
        *,
        settings: Settings,
        blobs: BlobStore,
        doc_path: Path,
        notary: Notary,
        ipynb_path: Path | None = None,
        signed: bool = False,
    ) -> None:
        self.notebook_id = notebook_id
        self.doc = doc
        self.settings = settings
        self.blobs = blobs
        self.ipynb_path = ipynb_path
        self.room_id = hashlib.sha256(notebook_id.encode()).hexdigest()[:12]
        self.log = log.bind(room_id=self.room_id)
        self.occupancy = Occupancy(self)
        self.peers = self.occupancy.peers  # the same dict: read as is by every doc change
        self.broadcasts = BroadcastLog(settings.room_write_rate)  # framed once, read by all
        # Its saves, merges, reconciles and compactions: run by the registry's group.
        self.tasks = TaskOwner(f"room {self.room_id}", self.log)
        self.storage = StorageAlarm(self)  # the blob store's failures, said and retried
        self.trims = TrimRequests(self.tasks.start_soon)  # memory given back at once
        self.coalescer = Coalescer(settings.coalesce_window, self._flush_writes)
        self.comms = CommStore(
            doc,
            blobs,
            schedule=self.coalescer.poke,
            on_storage_error=self.storage.failed,
            spawn=self.tasks.start_soon,
        )
        self.trust = RoomTrust(notary, doc, blobs, signed=signed)
        self.persister = stored_copy(self, doc_path)
        self._trust_timer: asyncio.TimerHandle | None = None
        self.kernel_binding = KernelBinding(self)
        self.comms.restore_saved()
        self._dirty_cells: dict[str, OutputLog] = {}
        self._snapshot: tuple[list[bytes], bytes] | None = None
        # Which open room bridges the kernel of a connection file (the daemon knows).
        self.kernel_bridged_in: Callable[[str], str | None] = lambda _file: None
        self.requests = RoomRequests(self)
        self.closed = False
        self.compactor = Compactor(self)
        # The heads of a doc the room made up (no stored copy, no file): a room left
        # like that is not stored when it closes.
        self.fresh_heads: list[bytes] | None = None
        self.saver = notebook_saver(self, ipynb_path) if ipynb_path is not None else None

    # --- peers (joining and leaving: room_occupancy.py) --------------------------------

    def snapshot(self) -> bytes:
        """The doc's save() bytes; joiners that arrive between two changes share one save."""
        heads = self.doc.get_heads()
        if self._snapshot is None or self._snapshot[0] != heads:
            self._snapshot = (heads, self.doc.save())
        return self._snapshot[1]

    def receive_sync(self, peer: Peer, data: bytes) -> None:
        """Apply a peer's sync message; a bad one is that peer's error, not the room's."""
        if self.compactor.switching(peer):  # sent against the previous epoch
            if self.compactor.late_sync(peer, data):
                self._late_change_carried(peer)
            return
        before = self.doc.get_heads()
        changed = self.doc.receive_sync_message(peer.sync_state, data)
        peer.sync_received(data)
        if changed:
            self.compactor.client_changed()
            problems = self.doc.validate()
            if problems:
                self._repair(peer, problems, before)
            self._doc_changed(origin=peer)
            peer.acknowledge_sync()
        else:
            peer.request_sync(paced=True)  # an answer: it waits for what is in flight

    def receive_switch(self, peer: Peer, event: Switch) -> None:
        """A peer's move to the compacted doc (docs/protocol.md, Compaction)."""
        if self.compactor.receive_switch(peer, event):
            self._late_change_carried(peer)

    def _late_change_carried(self, peer: Peer) -> None:
        """A peer's late change, carried by the daemon: a peer's change for trust, and
        every peer, that one included, has it to sync."""
        self._doc_changed(origin=peer)
        peer.request_sync()

    def replace_doc(
        self,
        doc: NotebookDoc,
        snapshot: tuple[list[bytes], bytes],
        *,
        base: list[bytes] | None = None,
    ) -> None:
        """Compaction: `doc` (same content, no history; `snapshot` its save() at some
        heads) is the room's doc from now on, for every writer. `base`: where it holds
        the version the .ipynb last had (the autosave's merge base), None if unknown."""
        self.doc = self.persister.doc = self.trust.doc = doc
        self.comms.replace_doc(doc)
        self._snapshot = snapshot
        if self.saver is not None:
            self.saver.doc = doc
            self.saver.base = base

    def broadcast(self, event: str, **fields: Any) -> None:
        self.send_all(Broadcast(event, fields))

    def send_all(self, message: Broadcast, *, comm_event: bool = False) -> None:
        """One broadcast to every peer, framed once; `comm_event`: a comm_sync may replace it."""
        self.broadcasts.append(message, comm_event=comm_event)

    def _repair(self, peer: Peer, problems: list[str], before: list[bytes]) -> None:
        """A client wrote something the schema forbids: put the doc back in shape, lost
        cells and metadata from the doc as it was `before` its change, comms from CommState."""
        peer.log.warning("schema_violation", problems=problems)
        self.doc.repair(restore_from=before)
        self.comms.resync_doc()
        self.coalescer.flush_now()
        peer.send(
            Broadcast(
                "error",
                {
                    "code": "schema_violation",
                    "message": "your change broke the notebook schema and was repaired: "
                    + "; ".join(problems[:5]),
                },
            )
        )

    # --- doc writes --------------------------------------------------------------------

    def _doc_changed(self, origin: Peer | None = None, *, paced: bool = False) -> None:
        """`paced`: a burst's write (several kernel messages folded), whose SYNC may wait
        (protocol.md, Pacing); any other change goes to every peer at once."""
        for peer in self.peers.values():
            if peer is not origin:
                peer.request_sync(paced=paced)
        self.persister.changed()
        self.compactor.changed()
        if self.saver is not None:
            self.saver.changed()
        # The daemon's own writes are trusted: only a peer's change, or any change while
        # something is untrusted, can change what is.
        untrusted = origin is not None or not self.trust.state["trusted"]
        if untrusted and self._trust_timer is None and not self.closed:
            loop = asyncio.get_running_loop()
            self._trust_timer = loop.call_later(TRUST_REFRESH, self.refresh_trust)

    def refresh_trust(self) -> None:
        """Tell peers when which outputs and widgets are trusted has changed."""
        if self._trust_timer is not None:
            self._trust_timer.cancel()
            self._trust_timer = None
        state = self.trust.refresh()
        if state is not None:
            self.log.info("trust_changed", trusted=state["trusted"])
            self.broadcast("trust", **state)

    def disk_merged(self) -> None:
        """An edit made on disk came in: peers sync, and what it brought is judged for
        trust now (it is not the daemon's own write)."""
        self._doc_changed()
        self.refresh_trust()

    def _flush_writes(self) -> None:
        flushed = self.comms.flush()
        for comm_id, data in flushed.to_kernel:  # Output widgets' captures, as a browser would
            self.kernel_binding.tell(comm_id, data)
        changed = flushed.doc_changed
        try:
            if flushed.storage_error is not None:
                raise flushed.storage_error
            for cell_id, output_log in self._dirty_cells.items():
                changed = self._write_cell_outputs(cell_id, output_log) or changed
        except OSError as exc:
            self.storage.failed(exc)
            return
        self._dirty_cells.clear()
        self.storage.error = None
        if changed:
            self._doc_changed(paced=self.coalescer.bursting)

    def _write_cell_outputs(self, cell_id: str, output_log: OutputLog) -> bool:
        try:
            entries = output_log.entries()
            self.trust.produced(cell_id, entries)
            return self.doc.set_outputs(cell_id, entries)
        except NotebookDocError as exc:  # the cell was deleted meanwhile
            self.log.info("outputs_dropped", cell_id=cell_id, reason=str(exc))
            return False

    def outputs_changed(self, cell_id: str, output_log: OutputLog) -> None:
        """A cell's outputs are to be written (at the next flush)."""
        self._dirty_cells[cell_id] = output_log
        self.coalescer.poke()

    def outputs_pending(self, cell_id: str) -> OutputLog | None:
        """The outputs waiting for the next flush, if any."""
        return self._dirty_cells.get(cell_id)

    def execution_count(self, cell_id: str, count: int) -> None:
        """The kernel started running the cell (execute_input)."""
        try:
            changed = self.doc.set_execution_count(cell_id, count)
            if self.doc.set_execution_status(cell_id, "running") or changed:
                self._doc_changed()
        except NotebookDocError as exc:
            self.log.info("execution_count_dropped", cell_id=cell_id, reason=str(exc))

    def cell_queued(self, cell_id: str) -> None:
        """An execution was sent for the cell: outputs and count cleared at once."""
        self._dirty_cells.pop(cell_id, None)
        changed = self.doc.clear_outputs(cell_id)
        changed = self.doc.set_execution_count(cell_id, None) or changed
        changed = self.doc.set_execution_status(cell_id, "queued") or changed
        if changed:
            self._doc_changed()

    def execution_settled(self, execution: Execution, status: str) -> None:
        """An execution ended: its outputs, widget states and status all written now."""
        cell_id = execution.cell_id
        if cell_id is not None and execution.log is not None:
            self._dirty_cells[cell_id] = execution.log
        try:
            if cell_id is not None and self.doc.set_execution_status(cell_id, status):
                self._doc_changed()
        except NotebookDocError as exc:  # the cell was deleted meanwhile
            self.log.info("execution_status_dropped", cell_id=cell_id, reason=str(exc))
        self.coalescer.flush_now()

    def clear_comms(self) -> Broadcast:
        """Every comm leaves both stores (the kernel went away or was replaced); the
        event that tells the peers."""
        event = self.comms.clear()
        self.coalescer.flush_now()
        self.compactor.comms_cleared()
        return event

    def apply_plan(self, plan: Plan) -> None:
        """A reconcile's plan: CommState and the doc brought to the kernel's widgets, as
        live messages would."""
        for event in self.comms.apply_plan(plan):
            self.send_all(event, comm_event=True)
        if plan:
            self.coalescer.flush_now()

    # --- the kernel (room_kernel.py) ----------------------------------------------------

    @property
    def kernel(self) -> KernelSession | None:
        return self.kernel_binding.session

    @property
    def kernel_status(self) -> str:
        return self.kernel_binding.status

    def require_kernel(self) -> KernelSession:
        return self.kernel_binding.require()

    async def start_kernel(self, starter: Callable[..., Any], **kwargs: Any) -> KernelSession:
        return await self.kernel_binding.start(starter, **kwargs)

    # --- requests ----------------------------------------------------------------------

    async def handle_request(self, peer: Peer | None, request: Any) -> dict:
        """Carry out a room action (room_requests.py); `peer` is None for the daemon's own
        callers (the Kernel Gateway API), which no action needs to answer."""
        return await self.requests.handle(peer, request)

    # --- lifetime ----------------------------------------------------------------------

    async def close(self, *, shutdown_kernel: bool = True) -> None:
        """Flush, stop the kernel we own, save, end the room's tasks; idempotent (the
        order is step 3 of the shutdown order in tasks.py)."""
        if self.closed:
            return
        self.closed = True
        self.occupancy.cancel_close()
        self.compactor.close()
        if self._trust_timer is not None:
            self._trust_timer.cancel()
        self.storage.close()
        self.kernel_binding.close()
        if shutdown_kernel:
            try:
                await self.kernel_binding.shutdown()
            except KernelError as exc:
                self.log.warning("kernel_shutdown_failed", error=exc.message)
        await self.comms.drain()  # the last flush writes what is left in place
        self.coalescer.flush_now()
        self.coalescer.cancel()
        await save_on_close(self)
        await self.tasks.close()
        self.log.info("room_closed")

    def info(self) -> dict:
        return {
            "notebook_id": self.notebook_id,
            "room_id": self.room_id,
            "peers": len(self.peers),
            "kernel_status": self.kernel_status,
            "kernel_name": self.kernel.kernel_name if self.kernel else None,
            "comms": len(self.comms),
            "cells": len(self.doc.cell_ids()),
            "path": str(self.ipynb_path) if self.ipynb_path else None,
            **self.compactor.info(),
            "save_state": self.saver.info() if self.saver is not None else None,
        }
