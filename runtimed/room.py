"""NotebookRoom: one notebook's doc, its peers, its kernel and its persistence.

Everything that changes the doc runs synchronously on the event loop, without an
`await` in between, so the room is the doc's only writer and needs no locks: client
sync messages, coalesced kernel writes and requests all apply whole, in order.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from notebook_doc import NotebookDoc, NotebookDocError, atomic_write, to_ipynb

from . import messages as m
from .blob_store import BlobError, BlobStore
from .capture import OutputCapture
from .coalesce import Coalescer
from .comm_mirror import CommMirror, resolve_blob, state_from_doc
from .comm_state import OUTPUT_MODEL, CommEntry, CommState, b64, to_wire
from .compaction import Compactor
from .config import Settings
from .iopub import Execution, IopubRouter, RouterHooks
from .kernel import KernelError, KernelEvent, KernelSession
from .outputs import OutputLog, decode_output
from .peer import Peer
from .persistence import DocPersister
from .protocol import Broadcast, Presence, Snapshot, Switch, Sync
from .reconcile import (
    WIDGET_TARGET,
    KernelWidget,
    Plan,
    ReconcileUnavailable,
    WidgetControl,
)
from .reconcile import plan as reconcile_plan

log = structlog.get_logger(__name__)

DEFAULT_KERNEL = "python3"


class RequestFailed(Exception):
    """A request the room could not carry out; becomes an error RESPONSE."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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
        ipynb_path: Path | None = None,
    ) -> None:
        self.notebook_id = notebook_id
        self.doc = doc
        self.settings = settings
        self.blobs = blobs
        self.ipynb_path = ipynb_path
        self.room_id = hashlib.sha256(notebook_id.encode()).hexdigest()[:12]
        self.log = log.bind(room_id=self.room_id)
        self.peers: dict[str, Peer] = {}
        self.comm_state = CommState()
        self.coalescer = Coalescer(settings.coalesce_window, self._flush_writes)
        self.mirror = CommMirror(
            doc,
            self.comm_state,
            blobs=blobs,
            schedule=self.coalescer.poke,
            on_storage_error=self._storage_failed,
        )
        self.persister = DocPersister(
            doc,
            doc_path,
            debounce=settings.save_debounce,
            max_interval=settings.save_max_interval,
            on_error=lambda message: self.broadcast("error", code="save_failed", message=message),
        )
        self.capture = OutputCapture(blobs)
        self.router = IopubRouter(
            self.comm_state,
            self.mirror,
            self.capture,
            RouterHooks(
                broadcast=self.broadcast,
                comm_broadcast=self._comm_broadcast,
                kernel_status=self._set_kernel_status,
                cell_outputs_changed=self._cell_outputs_changed,
                execution_count=self._execution_count,
                execution_done=self._execution_done,
                captured=self.coalescer.poke,
                is_private_comm=self._is_private_comm,
                private_comm_msg=self._private_comm_msg,
                widget_opened=self._widget_opened,
                loss_suspected=self._loss_suspected,
            ),
            log_=self.log,
        )
        self.kernel: KernelSession | None = None
        self.kernel_status = "none"
        self.control: WidgetControl | None = None
        self._reconcile_task: asyncio.Task[None] | None = None
        self._reconcile_again: str | None = None
        self.reconciles = 0  # reconciles that changed something, for tests and benchmarks
        self._restore_comms()
        self._kernel_lock = asyncio.Lock()
        self._dirty_cells: dict[str, OutputLog] = {}
        self._snapshot: tuple[list[bytes], bytes] | None = None
        self._storage_error: str | None = None  # the last blob-store failure, until a flush works
        self._storage_retry: asyncio.TimerHandle | None = None
        self._close_timer: asyncio.TimerHandle | None = None
        self.on_idle: Callable[[NotebookRoom], None] | None = None
        self.closed = False
        self.compactor = Compactor(self)

    def _restore_comms(self) -> None:
        """Widgets saved with the doc (or imported from an .ipynb) are live state until a
        kernel starts: CommState takes them too, so comm_sync and the doc agree."""
        for comm in self.doc.get_comms():
            state, buffers = state_from_doc(comm.state, self.blobs)
            self.comm_state.restore(
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

    # --- peers -----------------------------------------------------------------------

    def join(self, peer: Peer, *, snapshot: bool) -> None:
        """Welcome a peer in the spec's order: SNAPSHOT, SYNC, comm_sync, kernel_status."""
        self._cancel_close()
        self.peers[peer.id] = peer
        peer.log = peer.log.bind(room_id=self.room_id)
        peer.sync_source = lambda state: self.doc.generate_sync_message(state)  # any epoch
        peer.comm_sync_source = self._comm_sync_event
        peer.snapshot_source = self.snapshot
        self.coalescer.flush_now()  # the peer's first view includes everything received
        if snapshot:
            peer.send(Snapshot(self.snapshot()))
        first = self.doc.generate_sync_message(peer.sync_state)
        if first is not None:
            peer.send(Sync(first))
        if len(self.comm_state):
            peer.send(self._comm_sync_event())
        peer.send(Broadcast("kernel_status", {"status": self.kernel_status}))
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
        self.compactor.peer_left(peer)
        self.log.info("peer_left", peer_id=peer.id, peers=len(self.peers))
        self._maybe_schedule_close()

    def receive_sync(self, peer: Peer, data: bytes) -> None:
        """Apply a peer's sync message; a bad one is that peer's error, not the room's."""
        if self.compactor.switching(peer):  # sent against the previous epoch
            if self.compactor.late_sync(peer, data):
                self._doc_changed()
            return
        before = self.doc.get_heads()
        changed = self.doc.receive_sync_message(peer.sync_state, data)
        if changed:
            self.compactor.client_changed()
            problems = self.doc.validate()
            if problems:
                self._repair(peer, problems, before)
            self._doc_changed(origin=peer)
            peer.answer_sync()
        else:
            peer.request_sync()

    def receive_switch(self, peer: Peer, event: Switch) -> None:
        """A peer's move to the compacted doc (docs/protocol.md, Compaction)."""
        if self.compactor.receive_switch(peer, event):
            self._doc_changed()

    def replace_doc(self, doc: NotebookDoc, snapshot: tuple[list[bytes], bytes]) -> None:
        """Compaction: `doc` (same content, no history; `snapshot` its save() at some
        heads) is the room's doc from now on, for every writer."""
        self.doc = self.mirror.doc = self.persister.doc = doc
        self._snapshot = snapshot

    def relay_presence(self, peer: Peer, payload: dict) -> None:
        event = Presence({**payload, "peer_id": peer.id})
        for other in self.peers.values():
            if other is not peer:
                other.send(event)

    def broadcast(self, event: str, **fields: Any) -> None:
        message = Broadcast(event, fields)
        for peer in self.peers.values():
            peer.send(message)

    def _comm_broadcast(self, msg_type: str, content: dict, buffers: list[bytes]) -> None:
        message = Broadcast(
            "comm", {"msg_type": msg_type, "content": content, "buffers": b64(buffers)}
        )
        for peer in self.peers.values():
            peer.send(message, comm_event=True)

    def _comm_sync_event(self) -> Broadcast:
        return Broadcast("comm_sync", {"comms": [to_wire(e) for e in self.comm_state.get_all()]})

    def _repair(self, peer: Peer, problems: list[str], before: list[bytes]) -> None:
        """A client wrote something the schema forbids: put the doc back in shape, lost
        cells and metadata from the doc as it was `before` its change, comms from CommState."""
        peer.log.warning("schema_violation", problems=problems)
        self.doc.repair(restore_from=before)
        self.mirror.resync_all()
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

    def _flush_writes(self) -> None:
        try:
            self._publish_captures()
            changed = self.mirror.flush()
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

    def _publish_captures(self) -> None:
        """Output widgets' captured outputs: into CommState, the doc and the kernel."""
        for captured in self.capture.take():
            state = {"outputs": captured.outputs}
            if self.comm_state.on_comm_update(captured.comm_id, state) is None:
                continue
            self.comm_state.set_outputs(captured.comm_id, captured.entries)
            self.mirror.updated(captured.comm_id)
            if self.kernel is not None:
                try:
                    self.kernel.send_comm(
                        captured.comm_id, {"method": "update", "state": state, "buffer_paths": []}
                    )
                except KernelError as exc:
                    self.log.info("capture_not_sent", comm_id=captured.comm_id, reason=exc.message)

    def _write_cell_outputs(self, cell_id: str, output_log: OutputLog) -> bool:
        try:
            return self.doc.set_outputs(cell_id, output_log.entries())
        except NotebookDocError as exc:  # the cell was deleted meanwhile
            self.log.info("outputs_dropped", cell_id=cell_id, reason=str(exc))
            return False

    def _cell_outputs_changed(self, execution: Execution) -> None:
        if execution.cell_id is not None and execution.log is not None:
            self._dirty_cells[execution.cell_id] = execution.log
            self.coalescer.poke()

    def _execution_count(self, cell_id: str, count: int) -> None:
        try:
            if self.doc.set_execution_count(cell_id, count):
                self._doc_changed()
        except NotebookDocError as exc:
            self.log.info("execution_count_dropped", cell_id=cell_id, reason=str(exc))

    def _execution_done(self, execution: Execution) -> None:
        # Settle everything the execution produced first: a client that sees
        # execution_done then finds its outputs and widget states in place.
        if execution.cell_id is not None and execution.log is not None:
            self._dirty_cells[execution.cell_id] = execution.log
        self.coalescer.flush_now()
        self.broadcast(
            "execution_done",
            cell_id=execution.cell_id,
            msg_id=execution.msg_id,
            execution_count=execution.execution_count,
        )
        if execution.comm_messages >= self.settings.reconcile_threshold:
            self.schedule_reconcile(f"burst of {execution.comm_messages} comm messages")

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
            self.control.open()
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
        self.comm_state.clear()
        self.capture.clear()
        self.mirror.cleared()
        self.coalescer.flush_now()
        self.router.executions.clear()
        self.broadcast("comm_sync", comms=[])
        self.compactor.comms_cleared()

    # --- reconcile with the kernel's widget state ---------------------------------------

    def _is_private_comm(self, comm_id: str) -> bool:
        return self.control is not None and self.control.owns(comm_id)

    def _private_comm_msg(self, msg: dict) -> None:
        if self.control is not None:
            self.control.on_message(msg)

    def _widget_opened(self) -> None:
        if self.control is not None:
            self.control.widgets_seen()

    def _loss_suspected(self, reason: str) -> None:
        self.log.info("loss_suspected", reason=reason)
        self.schedule_reconcile(reason)

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
            await self._reconcile_now()
            reason = self._reconcile_again

    async def _reconcile_now(self) -> dict:
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
        plan = reconcile_plan(self.comm_state.get_all(), widgets)
        for widget in plan.added:
            paths = [list(path) for path in widget.buffers]
            data = {"state": widget.state, "buffer_paths": paths}
            self.comm_state.on_comm_open(
                widget.comm_id,
                WIDGET_TARGET,
                data,
                buffer_paths=paths,
                buffers=list(widget.buffers.values()),
            )
            self.mirror.opened(widget.comm_id)
            content = {"comm_id": widget.comm_id, "target_name": WIDGET_TARGET, "data": data}
            self._comm_broadcast("comm_open", content, list(widget.buffers.values()))
        for widget in plan.updated:
            entry = self.comm_state.replace_state(widget.comm_id, widget.state, widget.buffers)
            if entry is not None and entry.model_name == OUTPUT_MODEL:
                self.capture.set_from_kernel(widget.comm_id, widget.state.get("outputs", []))
            self.mirror.updated(widget.comm_id)
            paths = [list(path) for path in widget.buffers]
            data = {"method": "update", "state": widget.state, "buffer_paths": paths}
            content = {"comm_id": widget.comm_id, "data": data}
            self._comm_broadcast("comm_msg", content, list(widget.buffers.values()))
        for comm_id in plan.removed:
            self.comm_state.on_comm_close(comm_id)
            self.capture.forget(comm_id)
            self.mirror.closed(comm_id)
            self._comm_broadcast("comm_close", {"comm_id": comm_id, "data": {}}, [])
        if plan:
            self.reconciles += 1
            self.log.info("reconciled", **plan.summary())
            self.coalescer.flush_now()
        return plan

    def _require_kernel(self) -> KernelSession:
        if self.kernel is None or self.kernel_status in ("dead", "shutdown"):
            raise RequestFailed("no_kernel", "no kernel is running: send launch_kernel first")
        return self.kernel

    async def _start_kernel(self, starter: Callable[..., Any], **kwargs: Any) -> KernelSession:
        if self.kernel is not None:
            await self.kernel.shutdown()
            self.kernel = None
        if len(self.comm_state):
            self._clear_comms()  # saved widgets belong to no kernel: a new one starts clean
        self._set_kernel_status("starting")
        try:
            kernel = await starter(
                on_iopub=self.router.on_batch, on_event=self._on_kernel_event, **kwargs
            )
        except KernelError as exc:
            self._set_kernel_status("dead")
            self.broadcast("error", code=exc.code, message=exc.message)
            raise RequestFailed(exc.code, exc.message) from exc
        self.kernel = kernel
        self.control = WidgetControl(kernel.send_comm, self._apply_kernel_widgets, log_=self.log)
        self.control.open()
        self._set_kernel_status(kernel.status if kernel.status != "starting" else "idle")
        return kernel

    # --- requests ----------------------------------------------------------------------

    async def handle_request(self, peer: Peer, request: Any) -> dict:
        handler = self._request_handlers().get(type(request))
        if handler is None:
            raise RequestFailed("unknown_action", f"{type(request).__name__} is not a room action")
        return await handler(peer, request)

    def _request_handlers(self) -> dict[type, Callable[..., Any]]:
        return {
            m.LaunchKernel: self._launch_kernel,
            m.AttachKernel: self._attach_kernel,
            m.ExecuteCell: self._execute_cell,
            m.Execute: self._execute,
            m.SendComm: self._send_comm,
            m.InterruptKernel: self._interrupt_kernel,
            m.RestartKernel: self._restart_kernel,
            m.ShutdownKernel: self._shutdown_kernel,
            m.GetComms: self._get_comms,
            m.Save: self._save,
            m.KernelInfo: self._kernel_info,
            m.GetBlob: self._get_blob,
            m.Resync: self._resync,
            m.Compact: self._compact,
        }

    async def _launch_kernel(self, peer: Peer, req: m.LaunchKernel) -> dict:
        async with self._kernel_lock:
            if self.kernel is not None and self.kernel_status not in ("dead", "shutdown"):
                return {"kernel_name": self.kernel.kernel_name, "status": self.kernel_status}
            name = req.kernel_name or self._default_kernel_name()
            cwd = req.cwd or (str(self.ipynb_path.parent) if self.ipynb_path else None)
            if cwd is not None and not Path(cwd).is_dir():
                raise RequestFailed("bad_request", f"cwd {cwd!r} is not a directory")
            kernel = await self._start_kernel(
                KernelSession.launch,
                kernel_name=name,
                cwd=cwd,
                startup_timeout=self.settings.kernel_startup_timeout,
            )
            return {"kernel_name": kernel.kernel_name, "status": self.kernel_status}

    async def _attach_kernel(self, peer: Peer, req: m.AttachKernel) -> dict:
        path = Path(req.connection_file).expanduser()
        if not path.is_file():
            raise RequestFailed("bad_request", f"connection file {str(path)!r} does not exist")
        async with self._kernel_lock:
            kernel = await self._start_kernel(KernelSession.attach, connection_file=str(path))
        # Widgets made before we arrived: show them now, from the kernel's own state.
        widgets = await self._reconcile_now()
        return {"kernel_name": kernel.kernel_name, "status": self.kernel_status, **widgets}

    def _default_kernel_name(self) -> str:
        spec = self.doc.get_metadata().get("kernelspec")
        name = spec.get("name") if isinstance(spec, dict) else None
        return name if isinstance(name, str) and name else DEFAULT_KERNEL

    async def _execute_cell(self, peer: Peer, req: m.ExecuteCell) -> dict:
        cell = self.doc.get_cell(req.cell_id)
        if cell is None:
            raise RequestFailed("no_such_cell", f"no cell with id {req.cell_id!r}")
        if cell.cell_type != "code":
            raise RequestFailed("bad_request", f"cell {req.cell_id!r} is {cell.cell_type}")
        return self._run(self._require_kernel(), cell.source, req.cell_id)

    async def _execute(self, peer: Peer, req: m.Execute) -> dict:
        if req.cell_id is not None and self.doc.get_cell(req.cell_id) is None:
            raise RequestFailed("no_such_cell", f"no cell with id {req.cell_id!r}")
        return self._run(self._require_kernel(), req.code, req.cell_id)

    def _run(self, kernel: KernelSession, code: str, cell_id: str | None) -> dict:
        msg_id = kernel.execute(code)
        output_log = OutputLog(self.blobs) if cell_id is not None else None
        self.router.executions[msg_id] = Execution(msg_id, cell_id, output_log)
        if cell_id is not None:
            changed = self.doc.clear_outputs(cell_id)
            changed = self.doc.set_execution_count(cell_id, None) or changed
            if changed:
                self._doc_changed()
        self.broadcast("execution_started", cell_id=cell_id, msg_id=msg_id, execution_count=None)
        return {"msg_id": msg_id}

    async def _send_comm(self, peer: Peer, req: m.SendComm) -> dict:
        kernel = self._require_kernel()
        if self.comm_state.get(req.comm_id) is None:
            raise RequestFailed("no_such_comm", f"no live comm with id {req.comm_id!r}")
        buffers = list(req.buffers or [])
        # The client's change is applied now; ipywidgets echoes it back (echo_update),
        # which is broadcast in kernel order and merges to the same state.
        entry = self.comm_state.update_from_message(
            {"comm_id": req.comm_id, "data": req.data}, buffers
        )
        if entry is not None:
            self.mirror.updated(req.comm_id)
        msg_id = kernel.send_comm(req.comm_id, req.data, buffers=buffers)
        return {"msg_id": msg_id}

    async def _interrupt_kernel(self, peer: Peer, req: m.InterruptKernel) -> dict:
        await self._require_kernel().interrupt()
        return {"status": self.kernel_status}

    async def _restart_kernel(self, peer: Peer, req: m.RestartKernel) -> dict:
        async with self._kernel_lock:
            kernel = self._require_kernel()
            try:
                await kernel.restart()
            except KernelError as exc:
                raise RequestFailed(exc.code, exc.message) from exc
            return {"status": self.kernel_status}

    async def _shutdown_kernel(self, peer: Peer, req: m.ShutdownKernel) -> dict:
        async with self._kernel_lock:
            if self.kernel is None:
                raise RequestFailed("no_kernel", "no kernel to shut down")
            await self.kernel.shutdown()
            self.kernel = None
            return {"status": self.kernel_status}

    async def _resync(self, peer: Peer, req: m.Resync) -> dict:
        self._require_kernel()
        return await self._reconcile_now()

    async def _compact(self, peer: Peer, req: m.Compact) -> dict:
        result = await self.compactor.compact_now()
        if result is None:
            raise RequestFailed("room_closed", "the room closed before it was compacted")
        return result

    async def _get_comms(self, peer: Peer, req: m.GetComms) -> dict:
        return {"comms": [to_wire(e) for e in self.comm_state.get_all()]}

    async def _kernel_info(self, peer: Peer, req: m.KernelInfo) -> dict:
        kernel = self._require_kernel()
        return {"status": self.kernel_status, "kernel_info": kernel.kernel_info}

    async def _get_blob(self, peer: Peer, req: m.GetBlob) -> dict:
        try:
            info = self.blobs.info(req.hash)
            data = self.blobs.get(req.hash)
        except BlobError as exc:
            raise RequestFailed(exc.code, exc.message) from exc
        return {"hash": req.hash, "media_type": info.media_type, "data": b64([data])[0]}

    async def _save(self, peer: Peer, req: m.Save) -> dict:
        target = Path(req.path).expanduser() if req.path else self.ipynb_path
        if target is None:
            raise RequestFailed("bad_request", "this notebook has no file: give save a path")
        target = self._checked_ipynb_path(target)
        self.coalescer.flush_now()
        nb = to_ipynb(
            self.doc,
            resolve_output=lambda h: decode_output(h, self.blobs, on_missing="placeholder"),
            resolve_blob=lambda h: resolve_blob(self.blobs, h),
        )
        data = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
        await asyncio.to_thread(atomic_write, target, data.encode())
        if self.ipynb_path is None:
            self.ipynb_path = target
        return {"path": str(target)}

    @staticmethod
    def _checked_ipynb_path(path: Path) -> Path:
        if not path.is_absolute():
            raise RequestFailed("bad_path", f"{str(path)!r} is not an absolute path")
        if path.suffix != ".ipynb":
            raise RequestFailed("bad_path", f"{str(path)!r} does not end in .ipynb")
        if not path.parent.is_dir():
            raise RequestFailed("bad_path", f"directory {str(path.parent)!r} does not exist")
        return path

    # --- lifetime ----------------------------------------------------------------------

    def _maybe_schedule_close(self) -> None:
        if self.peers or self.closed or self._close_timer is not None:
            return
        if self.kernel is not None and self.kernel_status not in ("dead", "shutdown"):
            return  # a running kernel keeps the room: its outputs still need a home
        loop = asyncio.get_running_loop()
        self._close_timer = loop.call_later(self.settings.room_grace, self._idle)

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
        await self.mirror.drain()
        self.mirror.in_background = False  # the last flush writes what is left in place
        self.coalescer.flush_now()
        self.coalescer.cancel()
        await self.persister.close()
        self.log.info("room_closed")

    def info(self) -> dict:
        return {
            "notebook_id": self.notebook_id,
            "room_id": self.room_id,
            "peers": len(self.peers),
            "kernel_status": self.kernel_status,
            "kernel_name": self.kernel.kernel_name if self.kernel else None,
            "comms": len(self.comm_state),
            "cells": len(self.doc.cell_ids()),
            "path": str(self.ipynb_path) if self.ipynb_path else None,
            **self.compactor.info(),
        }
