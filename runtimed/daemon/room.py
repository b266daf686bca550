"""NotebookRoom: one notebook's doc, its peers, its kernel and its persistence.

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
from ..comms.reconcile import (
    WIDGET_TARGET,
    KernelWidget,
    Plan,
    ReconcileUnavailable,
    WidgetControl,
)
from ..comms.reconcile import plan as reconcile_plan
from ..comms.store import CommStore
from ..config import Settings
from ..errors import RequestFailed
from ..kernel import KernelError, KernelEvent, KernelSession
from ..outputs import FinishedCellUpdate, OutputLog
from ..trust import Notary, RoomTrust
from ..wire import Broadcast, Presence, Snapshot, Switch, Sync
from .autosave import NotebookSaver, SaverHooks
from .broadcast_log import BroadcastLog
from .compaction import Compactor
from .iopub import (
    ControlMessage,
    Effect,
    Execution,
    ExecutionCount,
    ExecutionDone,
    IopubRouter,
    KernelStatus,
    LossSuspected,
    OutputsChanged,
    Send,
    WidgetOpened,
)
from .peer import Peer
from .persistence import DocPersister
from .room_requests import RoomRequests

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
        self.peers: dict[str, Peer] = {}
        self.broadcasts = BroadcastLog()  # framed once, read by every peer
        self.coalescer = Coalescer(settings.coalesce_window, self._flush_writes)
        self.comms = CommStore(
            doc, blobs, schedule=self.coalescer.poke, on_storage_error=self._storage_failed
        )
        self.trust = RoomTrust(notary, doc, blobs, signed=signed)
        self.persister = DocPersister(
            doc,
            doc_path,
            debounce=settings.save_debounce,
            max_interval=settings.save_max_interval,
            on_error=lambda message: self.broadcast("error", code="save_failed", message=message),
            before_save=self.trust.signing,  # a failure is logged; the save goes on
        )
        self._trust_timer: asyncio.TimerHandle | None = None
        self.router = IopubRouter(self.comms, is_control_comm=self._is_private_comm, log_=self.log)
        self.kernel: KernelSession | None = None
        self.kernel_status = "none"
        self.control: WidgetControl | None = None
        self._reconcile_task: asyncio.Task[None] | None = None
        self._reconcile_again: str | None = None
        self.reconciles = 0  # reconciles that changed something, for tests and benchmarks
        # CommState known equal to the kernel's widgets: since a kernel we started (empty)
        # or a reconcile, with no loss suspected since.
        self.widgets_verified = False
        self.comms.restore_saved()
        self.kernel_lock = asyncio.Lock()
        self._dirty_cells: dict[str, OutputLog] = {}
        self._snapshot: tuple[list[bytes], bytes] | None = None
        self._storage_error: str | None = None  # the last blob-store failure, until a flush works
        self._storage_retry: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self.on_idle: Callable[[NotebookRoom], None] | None = None
        # Which open room bridges the kernel of a connection file (the daemon knows).
        self.kernel_bridged_in: Callable[[str], str | None] = lambda _file: None
        self.on_reconciled: Callable[[Plan], None] | None = None  # a plan that changed something
        self.keep_open = False  # a Kernel Gateway kernel lives here, dead or alive
        self.requests = RoomRequests(self)
        self.closed = False
        self.compactor = Compactor(self)
        # The heads of a doc the room made up (no stored copy, no file): a room left
        # like that is not stored when it closes.
        self.fresh_heads: list[bytes] | None = None
        self.saver = self.new_saver(ipynb_path) if ipynb_path is not None else None

    def new_saver(self, path: Path) -> NotebookSaver:
        saver = NotebookSaver(
            self.doc,
            path,
            notebook_id=self.notebook_id,
            docs_dir=self.settings.docs_dir,
            blobs=self.blobs,
            hooks=SaverHooks(
                doc_changed=self._disk_merged,
                flush=self.coalescer.flush_now,
                broadcast=self.broadcast,
                persist=self.persister.save,
                saved=lambda nb: self.trust.sign_saved(nb),
            ),
            autosave=self.settings.autosave,
            quiet=self.settings.autosave_quiet,
            max_delay=self.settings.autosave_max_delay,
            retry=self.settings.autosave_retry,
            log_=self.log,
        )
        if self.settings.file_watch_interval > 0:
            saver.watch(self.settings.file_watch_interval)
        return saver

    # --- peers -----------------------------------------------------------------------

    def join(self, peer: Peer, *, snapshot: bool) -> None:
        """Welcome a peer in the spec's order: SNAPSHOT, SYNC, comm_sync, trust, kernel_status."""
        self._cancel_close()
        self.peers[peer.id] = peer
        self.broadcasts.attach(peer)
        peer.log = peer.log.bind(room_id=self.room_id)
        peer.sync_source = lambda state: self.doc.generate_sync_message(state)  # any epoch
        peer.comm_sync_source = self.comms.sync_event
        peer.snapshot_source = self.snapshot
        self.coalescer.flush_now()  # the peer's first view includes everything received
        if snapshot:
            peer.send(Snapshot(self.snapshot()))
        first = self.doc.generate_sync_message(peer.sync_state)
        if first is not None:
            peer.send(Sync(first))
        if len(self.comms):
            peer.send(self.comms.sync_event())
        peer.send(Broadcast("trust", self.trust.state))
        peer.send(Broadcast("kernel_status", {"status": self.kernel_status}))
        if self.saver is not None:
            peer.send(Broadcast("save_state", self.saver.event()))
        self.log.info("peer_joined", peer_id=peer.id, peers=len(self.peers), name=peer.name)

    def snapshot(self) -> bytes:
        """The doc's save() bytes; joiners that arrive between two changes share one save."""
        heads = self.doc.get_heads()
        if self._snapshot is None or self._snapshot[0] != heads:
            self._snapshot = (heads, self.doc.save())
        return self._snapshot[1]

    def leave(self, peer: Peer) -> None:
        if self.peers.pop(peer.id, None) is None:
            return
        self.broadcasts.detach(peer)
        self.compactor.peer_left(peer)
        self.log.info("peer_left", peer_id=peer.id, peers=len(self.peers))
        self._maybe_schedule_close()

    def receive_sync(self, peer: Peer, data: bytes) -> None:
        """Apply a peer's sync message; a bad one is that peer's error, not the room's."""
        if self.compactor.switching(peer):  # sent against the previous epoch
            if self.compactor.late_sync(peer, data):
                self._late_change_carried(peer)
            return
        before = self.doc.get_heads()
        changed = self.doc.receive_sync_message(peer.sync_state, data)
        if changed:
            self.compactor.client_changed()
            problems = self.doc.validate()
            if problems:
                self._repair(peer, problems, before)
            self._doc_changed(origin=peer)
            peer.acknowledge_sync()
        else:
            peer.request_sync()

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

    def relay_presence(self, peer: Peer, payload: dict) -> None:
        event = Presence({**payload, "peer_id": peer.id})
        for other in self.peers.values():
            if other is not peer:
                other.send(event)

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

    def _doc_changed(self, origin: Peer | None = None) -> None:
        for peer in self.peers.values():
            if peer is not origin:
                peer.request_sync()
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

    def _disk_merged(self) -> None:
        """An edit made on disk came in: peers sync, and what it brought is judged for
        trust now (it is not the daemon's own write)."""
        self._doc_changed()
        self.refresh_trust()

    def _flush_writes(self) -> None:
        flushed = self.comms.flush()
        for comm_id, data in flushed.to_kernel:  # Output widgets' captures, as a browser would
            self._tell_kernel(comm_id, data)
        changed = flushed.doc_changed
        try:
            if flushed.storage_error is not None:
                raise flushed.storage_error
            for cell_id, output_log in self._dirty_cells.items():
                changed = self._write_cell_outputs(cell_id, output_log) or changed
        except OSError as exc:
            self._storage_failed(exc)
            return
        self._dirty_cells.clear()
        self._storage_error = None
        if changed:
            self._doc_changed()

    def _storage_failed(self, exc: OSError) -> None:
        """The blob store's disk failed mid-flush (full, read-only). What was dirty stays
        dirty, so a later flush writes it; say so once per failure, and try again later."""
        message = f"could not store widget data or outputs: {exc.strerror or exc}"
        if message != self._storage_error:
            self._storage_error = message
            self.log.error("storage_failed", error=str(exc))
            self.broadcast("error", code="storage_failed", message=message)
        if self._storage_retry is None:
            loop = asyncio.get_running_loop()
            self._storage_retry = loop.call_later(self.settings.save_max_interval, self._retry)

    def _retry(self) -> None:
        self._storage_retry = None
        if not self.closed:
            self.coalescer.poke()

    def _tell_kernel(self, comm_id: str, data: dict) -> None:
        if self.kernel is not None:
            try:
                self.kernel.send_comm(comm_id, data)
            except KernelError as exc:
                self.log.info("capture_not_sent", comm_id=comm_id, reason=exc.message)

    def _write_cell_outputs(self, cell_id: str, output_log: OutputLog) -> bool:
        try:
            entries = output_log.entries()
            self.trust.produced(cell_id, entries)
            return self.doc.set_outputs(cell_id, entries)
        except NotebookDocError as exc:  # the cell was deleted meanwhile
            self.log.info("outputs_dropped", cell_id=cell_id, reason=str(exc))
            return False

    def _on_iopub(self, msgs: list[dict]) -> None:
        """The kernel reader's batch: routed message by message, each effect applied here."""
        for msg in msgs:
            for effect in self.router.route(msg):
                self._apply(effect)

    def _on_reply(self, msg: dict) -> None:
        """A shell reply: an execute_reply may finish its execution."""
        for effect in self.router.route_reply(msg):
            self._apply(effect)

    def _apply(self, effect: Effect) -> None:
        match effect:
            case Send(event, comm_event):
                self.send_all(event, comm_event=comm_event)
            case KernelStatus(status):
                self._set_kernel_status(status)
            case OutputsChanged(execution):
                self._cell_outputs_changed(execution)
            case FinishedCellUpdate():
                self._finished_cell_updated(effect)
            case ExecutionCount(cell_id, count):
                self._execution_count(cell_id, count)
            case ExecutionDone(execution):
                self._execution_done(execution)
            case ControlMessage(msg):
                if self.control is not None:
                    self.control.on_message(msg)
            case WidgetOpened():
                if self.control is not None:
                    self.control.widgets_seen()
            case LossSuspected(reason):
                self.log.info("loss_suspected", reason=reason)
                self.widgets_verified = False
                self.schedule_reconcile(reason)

    def _cell_outputs_changed(self, execution: Execution) -> None:
        if execution.cell_id is not None and execution.log is not None:
            self._dirty_cells[execution.cell_id] = execution.log
            self.coalescer.poke()

    def _finished_cell_updated(self, update: FinishedCellUpdate) -> None:
        """A display update for a finished cell: written unless a client changed it since."""
        if self._dirty_cells.get(update.cell_id) is update.log:
            return  # an earlier update is not written yet: the doc lags behind on purpose
        try:
            current = self.doc.get_outputs(update.cell_id)
        except NotebookDocError:
            current = None
        if current != update.before:
            self.router.finished.forget(update.cell_id)
            self.log.info("display_update_skipped", cell_id=update.cell_id)
            return
        self._dirty_cells[update.cell_id] = update.log
        self.coalescer.poke()

    def _execution_count(self, cell_id: str, count: int) -> None:
        """The kernel started running the cell (execute_input)."""
        try:
            changed = self.doc.set_execution_count(cell_id, count)
            if self.doc.set_execution_status(cell_id, "running") or changed:
                self._doc_changed()
        except NotebookDocError as exc:
            self.log.info("execution_count_dropped", cell_id=cell_id, reason=str(exc))

    def _execution_done(self, execution: Execution) -> None:
        # Settle everything the execution produced first: a client that sees
        # execution_done then finds its outputs and widget states in place.
        if execution.cell_id is not None and execution.log is not None:
            self._dirty_cells[execution.cell_id] = execution.log
        outcome = execution.outcome()
        self._set_execution_status(execution.cell_id, outcome["status"])
        self.coalescer.flush_now()
        self.broadcast(
            "execution_done",
            cell_id=execution.cell_id,
            msg_id=execution.msg_id,
            execution_count=execution.execution_count,
            **outcome,
        )
        if execution.comm_messages >= self.settings.reconcile_threshold:
            self.widgets_verified = False
            self.schedule_reconcile(f"burst of {execution.comm_messages} comm messages")

    def _set_execution_status(self, cell_id: str | None, status: str) -> None:
        if cell_id is None:
            return
        try:
            if self.doc.set_execution_status(cell_id, status):
                self._doc_changed()
        except NotebookDocError as exc:  # the cell was deleted meanwhile
            self.log.info("execution_status_dropped", cell_id=cell_id, reason=str(exc))

    def _abort_executions(self, pending: list[Execution]) -> None:
        """The kernel went away (restart, shutdown, death): whatever was queued or
        running ends as aborted, in the doc and for the clients."""
        for execution in pending:
            execution.reply = {"status": "aborted"}
            self._execution_done(execution)

    # --- kernel ------------------------------------------------------------------------

    def _set_kernel_status(self, status: str) -> None:
        if status != self.kernel_status:
            self.kernel_status = status
            self.broadcast("kernel_status", status=status)

    def _on_kernel_event(self, event: KernelEvent) -> None:
        self.log.info("kernel_event", kind=event.kind, reason=event.reason)
        if event.kind in ("restarting", "died", "shutdown"):
            self._clear_comms()
        if event.kind == "restarted" and self.control is not None:
            self.widgets_verified = True  # a fresh process: no widgets, CommState cleared
            self.control.reset()
        status = {"started": "idle", "restarted": "idle"}.get(event.kind, event.kind)
        if event.kind == "died":
            status = "dead"
            if self.kernel_status != "starting":  # a failed launch says so once, with its code
                self.broadcast("error", code="kernel_died", message=event.reason or "kernel died")
        self._set_kernel_status(status)
        if event.kind in ("died", "shutdown"):
            self._maybe_schedule_close()

    def _clear_comms(self) -> None:
        """Restart, shutdown and death drop every comm from both stores, and say so."""
        self.widgets_verified = False
        event = self.comms.clear()
        pending = self.router.reset()
        self.coalescer.flush_now()
        self._abort_executions(pending)
        self.send_all(event)
        self.compactor.comms_cleared()

    # --- reconcile with the kernel's widget state ---------------------------------------

    def _is_private_comm(self, comm_id: str) -> bool:
        return self.control is not None and self.control.owns(comm_id)

    def comms_verified(self) -> bool:
        """CommState is known to equal the kernel's widgets: the kernel started here
        without any, or a reconcile matched them, and nothing can have been lost since
        (no loss suspected, no burst under way)."""
        limit = self.settings.reconcile_threshold
        running = self.router.executions.values()
        return self.widgets_verified and all(e.comm_messages < limit for e in running)

    def schedule_reconcile(self, reason: str) -> None:
        """Reconcile soon, once; a request during a running one queues one more."""
        if self.closed or self.kernel is None:
            return
        if self._reconcile_task is not None and not self._reconcile_task.done():
            self._reconcile_again = reason
            return
        self._reconcile_task = asyncio.get_running_loop().create_task(self._reconcile_loop(reason))

    async def _reconcile_loop(self, reason: str | None) -> None:
        while reason is not None:
            self.log.info("reconcile", reason=reason)
            self._reconcile_again = None
            await self.reconcile_now()
            reason = self._reconcile_again

    async def reconcile_now(self) -> dict:
        """One round trip to the kernel; what changed, or why it could not be done."""
        if self.control is None:
            return {"available": False, "reason": "no kernel"}
        try:
            plan = await self.control.reconcile()
        except ReconcileUnavailable as exc:
            return {"available": False, "reason": str(exc)}
        except KernelError as exc:
            return {"available": False, "reason": exc.message}
        return {"available": True, **plan.summary()}

    def _apply_kernel_widgets(self, widgets: list[KernelWidget]) -> Plan:
        """Bring CommState and the doc to the kernel's answer, as live messages would."""
        plan = reconcile_plan(self.comms.state.get_all(), widgets)
        for event in self.comms.apply_plan(plan):
            self.send_all(event, comm_event=True)
        if plan:
            self.reconciles += 1
            self.log.info("reconciled", **plan.summary())
            self.coalescer.flush_now()
            if self.on_reconciled is not None:
                self.on_reconciled(plan)
        self.widgets_verified = True
        return plan

    def require_kernel(self) -> KernelSession:
        if self.kernel is None or self.kernel_status in ("dead", "shutdown"):
            raise RequestFailed("no_kernel", "no kernel is running: send launch_kernel first")
        return self.kernel

    async def start_kernel(self, starter: Callable[..., Any], **kwargs: Any) -> KernelSession:
        if self.kernel is not None:
            await self.kernel.shutdown()
            self.kernel = None
        if len(self.comms):
            self._clear_comms()  # saved widgets belong to no kernel: a new one starts clean
        self.trust.kernel_started()
        self.refresh_trust()
        self._set_kernel_status("starting")
        try:
            kernel = await starter(
                on_iopub=self._on_iopub,
                on_event=self._on_kernel_event,
                on_reply=self._on_reply,
                **kwargs,
            )
        except KernelError as exc:
            self._set_kernel_status("dead")
            self.broadcast("error", code=exc.code, message=exc.message)
            raise RequestFailed(exc.code, exc.message) from exc
        self.kernel = kernel
        self.widgets_verified = kernel.owned  # a kernel we started has no widgets yet

        async def widget_comms() -> dict:
            content = {"target_name": WIDGET_TARGET}
            return (await kernel.request("comm_info_request", content, timeout=10))["content"]

        self.control = WidgetControl(
            kernel.send_comm, widget_comms, self._apply_kernel_widgets, log_=self.log
        )
        self._set_kernel_status(kernel.status if kernel.status != "starting" else "idle")
        return kernel

    # --- requests ----------------------------------------------------------------------

    async def handle_request(self, peer: Peer | None, request: Any) -> dict:
        """Carry out a room action (room_requests.py); `peer` is None for the daemon's own
        callers (the Kernel Gateway API), which no action needs to answer."""
        return await self.requests.handle(peer, request)

    def start_execution(self, kernel: KernelSession, code: str, cell_id: str | None) -> dict:
        """Send an execute request; its cell's outputs and count are cleared at once."""
        msg_id = kernel.execute(code)
        output_log = OutputLog(self.blobs) if cell_id is not None else None
        self.router.started(Execution(msg_id, cell_id, output_log))
        if cell_id is not None:
            self._dirty_cells.pop(cell_id, None)
            changed = self.doc.clear_outputs(cell_id)
            changed = self.doc.set_execution_count(cell_id, None) or changed
            changed = self.doc.set_execution_status(cell_id, "queued") or changed
            if changed:
                self._doc_changed()
        self.broadcast("execution_started", cell_id=cell_id, msg_id=msg_id, execution_count=None)
        return {"msg_id": msg_id}

    # --- lifetime ----------------------------------------------------------------------

    def release(self) -> None:
        """Nothing but peers keeps the room open any more: it closes once idle."""
        self.keep_open = False
        self._maybe_schedule_close()

    def _maybe_schedule_close(self) -> None:
        if self.peers or self.keep_open or self.closed or self._close_timer is not None:
            return
        if self.kernel is not None and self.kernel_status not in ("dead", "shutdown"):
            return  # a running kernel keeps the room: its outputs still need a home
        loop = asyncio.get_running_loop()
        untouched = self.doc.get_heads() == self.fresh_heads  # nothing to wait for
        delay = 0 if untouched else self.settings.room_grace
        self._close_timer = loop.call_later(delay, self._idle)

    def _cancel_close(self) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None

    def _idle(self) -> None:
        self._close_timer = None
        if not self.peers and self.on_idle is not None:
            self.on_idle(self)

    async def close(self, *, shutdown_kernel: bool = True) -> None:
        """Flush, stop the kernel we own, save; idempotent."""
        if self.closed:
            return
        self.closed = True
        self._cancel_close()
        self.compactor.close()
        if self._trust_timer is not None:
            self._trust_timer.cancel()
        if self._storage_retry is not None:
            self._storage_retry.cancel()
        if self._reconcile_task is not None:
            self._reconcile_task.cancel()
        if self.kernel is not None and shutdown_kernel:
            try:
                await self.kernel.shutdown()
            except KernelError as exc:
                self.log.warning("kernel_shutdown_failed", error=exc.message)
            self.kernel = None
        await self.comms.drain()  # the last flush writes what is left in place
        self.coalescer.flush_now()
        self.coalescer.cancel()
        if self.saver is not None:
            await self.saver.close()
        if self.doc.get_heads() == self.fresh_heads:
            self.persister.cancel()  # a room made up and never used leaves nothing stored
        else:
            await self.persister.close()
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
