"""A room's kernel binding: the session, its status, its IOPub and its widget reconcile.

The binding starts (or attaches) the kernel and turns what the kernel says into the
room's actions: the IOPub router's effects, lifecycle events, reconcile plans. It
writes nothing itself: every doc change goes through the room (room.py), the doc's
only writer; here is when and why the kernel's side asks for one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import anyio

from notebook_doc import NotebookDocError

from ..comms.reconcile import (
    WIDGET_TARGET,
    KernelWidget,
    Plan,
    ReconcileUnavailable,
    WidgetControl,
)
from ..comms.reconcile import plan as reconcile_plan
from ..errors import RequestFailed
from ..kernel import KernelError, KernelEvent, KernelSession
from ..outputs import FinishedCellUpdate, OutputLog
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

if TYPE_CHECKING:
    from .room import NotebookRoom


class KernelBinding:
    """At most one kernel session per room, and what the room knows of it."""

    def __init__(self, room: NotebookRoom) -> None:
        self.room = room
        self.log = room.log
        self.session: KernelSession | None = None
        self.status = "none"
        self._why: dict[str, str] = {}  # why a kernel is dead: code and reason
        self._reconcile_when_idle = ""  # why, when a reconnect came during an execution
        self.lock = asyncio.Lock()  # one start, restart or shutdown at a time
        self.router = IopubRouter(room.comms, is_control_comm=self._is_private_comm, log_=room.log)
        self.control: WidgetControl | None = None
        self._reconciling: anyio.CancelScope | None = None  # the reconcile loop under way
        self._reconcile_again: str | None = None
        self.reconciles = 0  # reconciles that changed something, for tests and benchmarks
        # CommState known equal to the kernel's widgets: since a kernel we started (empty)
        # or a reconcile, with no loss suspected since.
        self.widgets_verified = False
        self.on_reconciled: Callable[[Plan], None] | None = None  # a plan that changed something

    # --- starting ------------------------------------------------------------------------

    def require(self) -> KernelSession:
        if self.session is None or self.status in ("dead", "shutdown"):
            raise RequestFailed("no_kernel", "no kernel is running: send launch_kernel first")
        return self.session

    async def start(self, starter: Callable[..., Any], **kwargs: Any) -> KernelSession:
        """A new session from `starter` (launch or attach), replacing any running one."""
        room = self.room
        if self.session is not None:
            await self.session.shutdown()
            self.session = None
        if len(room.comms):
            self.clear_comms()  # saved widgets belong to no kernel: a new one starts clean
        room.trust.kernel_started()
        room.refresh_trust()
        self.set_status("starting")
        try:
            kernel = await starter(
                tasks=room.tasks,  # the session's runner: a restart in a request stays owned
                on_iopub=self._on_iopub,
                on_event=self._on_kernel_event,
                on_reply=self._on_reply,
                **kwargs,
            )
        except KernelError as exc:
            self.set_status("dead", exc.code, exc.message)
            room.broadcast("error", code=exc.code, message=exc.message)
            raise RequestFailed(exc.code, exc.message) from exc
        self.session = kernel
        self.widgets_verified = kernel.owned  # a kernel we started has no widgets yet

        async def widget_comms() -> dict:
            content = {"target_name": WIDGET_TARGET}
            return (await kernel.request("comm_info_request", content, timeout=10))["content"]

        self.control = WidgetControl(
            kernel.send_comm, widget_comms, self._apply_kernel_widgets, log_=self.log
        )
        self.set_status(kernel.status if kernel.status != "starting" else "idle")
        return kernel

    async def shutdown(self) -> None:
        """Stop the session (an owned kernel's process too); idempotent."""
        if self.session is not None:
            await self.session.shutdown()
            self.session = None

    def tell(self, comm_id: str, data: dict) -> None:
        """A message to a comm in the kernel, as a browser would send it (best effort)."""
        if self.session is not None:
            try:
                self.session.send_comm(comm_id, data)
            except KernelError as exc:
                self.log.info("capture_not_sent", comm_id=comm_id, reason=exc.message)

    # --- what the kernel says ------------------------------------------------------------

    def set_status(self, status: str, code: str = "", reason: str = "") -> None:
        """`code` and `reason` say why a kernel is dead (e.g. gateway_unreachable)."""
        if status != self.status:
            self.status = status
            self._why = {"code": code, "reason": reason} if code else {}
            self.room.broadcast("kernel_status", **self.status_fields())

    def status_fields(self) -> dict[str, str]:
        """The `kernel_status` broadcast's fields."""
        return {"status": self.status, **self._why}

    def _on_iopub(self, msgs: list[dict]) -> None:
        """The kernel reader's batch: routed message by message, each effect applied."""
        for msg in msgs:
            for effect in self.router.route(msg):
                self._apply(effect)

    def _on_reply(self, msg: dict) -> None:
        """A shell reply: an execute_reply may finish its execution."""
        for effect in self.router.route_reply(msg):
            self._apply(effect)

    def _apply(self, effect: Effect) -> None:
        room = self.room
        match effect:
            case Send(event, comm_event):
                room.send_all(event, comm_event=comm_event)
            case KernelStatus(status):
                self.set_status(status)
            case OutputsChanged(execution):
                if execution.cell_id is not None and execution.log is not None:
                    room.outputs_changed(execution.cell_id, execution.log)
            case FinishedCellUpdate():
                self._finished_cell_updated(effect)
            case ExecutionCount(cell_id, count):
                room.execution_count(cell_id, count)
            case ExecutionDone(execution):
                self._execution_done(execution)
                if execution.comm_messages >= room.settings.reconcile_threshold:
                    self.widgets_verified = False
                    self.schedule_reconcile(f"burst of {execution.comm_messages} comm messages")
                elif self._reconcile_when_idle and not self.router.executions:
                    self.schedule_reconcile(self._reconcile_when_idle)
                if not self.router.executions:
                    self._reconcile_when_idle = ""
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

    def _on_kernel_event(self, event: KernelEvent) -> None:
        room = self.room
        self.log.info("kernel_event", kind=event.kind, reason=event.reason)
        if event.kind == "reconnected":  # messages of the gap may be lost: ask the kernel
            self.widgets_verified = False
            if self.router.executions:  # a busy kernel answers once its cells are done
                self._reconcile_when_idle = event.reason
            else:
                self.schedule_reconcile(event.reason)
            return
        if event.kind in ("restarting", "died", "shutdown"):
            self.clear_comms()
        if event.kind == "restarted" and self.control is not None:
            self.widgets_verified = True  # a fresh process: no widgets, CommState cleared
            self.control.reset()
        status = {"started": "idle", "restarted": "idle"}.get(event.kind, event.kind)
        code = ""
        if event.kind == "died":
            status, code = "dead", event.code or "kernel_died"
            message = event.reason or "kernel died"
            # A failed launch says so once, with its code (start). The literal code
            # stays visible to the docs check (tests/wire/test_protocol_doc.py).
            if self.status != "starting" and code == "kernel_died":
                room.broadcast("error", code="kernel_died", message=message)
            elif self.status != "starting":  # gateway_unreachable, …
                room.broadcast("error", code=code, message=message)
        self.set_status(status, code, event.reason)
        if event.kind in ("died", "shutdown"):
            room.occupancy.maybe_close()

    def clear_comms(self) -> None:
        """Restart, shutdown and death drop every comm from both stores; whatever was
        queued or running ends as aborted, in the doc and for the clients. A reconcile
        waiting for those executions to end is dropped: the comms it would check are gone."""
        self.widgets_verified = False
        self._reconcile_when_idle = ""
        pending = self.router.reset()
        event = self.room.clear_comms()
        for execution in pending:
            execution.reply = {"status": "aborted"}
            self._execution_done(execution)
        self.room.send_all(event)

    # --- executions ----------------------------------------------------------------------

    def start_execution(self, code: str, cell_id: str | None) -> dict:
        """Send an execute request; its cell's outputs and count are cleared at once."""
        msg_id = self.require().execute(code)
        output_log = OutputLog(self.room.blobs) if cell_id is not None else None
        self.router.started(Execution(msg_id, cell_id, output_log))
        if cell_id is not None:
            self.room.cell_queued(cell_id)
        fields = {"cell_id": cell_id, "msg_id": msg_id, "execution_count": None}
        self.room.broadcast("execution_started", **fields)
        return {"msg_id": msg_id}

    def _execution_done(self, execution: Execution) -> None:
        # Settle everything the execution produced first: a client that sees
        # execution_done then finds its outputs and widget states in place.
        outcome = execution.outcome()
        self.room.execution_settled(execution, outcome["status"])
        self.room.broadcast(
            "execution_done",
            cell_id=execution.cell_id,
            msg_id=execution.msg_id,
            execution_count=execution.execution_count,
            **outcome,
        )

    def _finished_cell_updated(self, update: FinishedCellUpdate) -> None:
        """A display update for a finished cell: written unless a client changed it since."""
        room = self.room
        if room.outputs_pending(update.cell_id) is update.log:
            return  # an earlier update is not written yet: the doc lags behind on purpose
        try:
            current = room.doc.get_outputs(update.cell_id)
        except NotebookDocError:
            current = None
        if current != update.before:
            self.router.finished.forget(update.cell_id)
            self.log.info("display_update_skipped", cell_id=update.cell_id)
            return
        room.outputs_changed(update.cell_id, update.log)

    # --- reconcile with the kernel's widget state -----------------------------------------

    def _is_private_comm(self, comm_id: str) -> bool:
        return self.control is not None and self.control.owns(comm_id)

    def comms_verified(self) -> bool:
        """CommState is known to equal the kernel's widgets: the kernel started here
        without any, or a reconcile matched them, and nothing can have been lost since
        (no loss suspected, no burst under way)."""
        limit = self.room.settings.reconcile_threshold
        running = self.router.executions.values()
        return self.widgets_verified and all(e.comm_messages < limit for e in running)

    def schedule_reconcile(self, reason: str) -> None:
        """Reconcile soon, once; a request during a running one queues one more."""
        if self.room.closed or self.session is None:
            return
        if self._reconciling is not None:
            self._reconcile_again = reason
            return
        self._reconciling = anyio.CancelScope()
        self.room.tasks.start_soon(self._reconcile_loop, reason, self._reconciling)

    async def _reconcile_loop(self, reason: str | None, scope: anyio.CancelScope) -> None:
        """In the room's group; `close` cancels it."""
        try:
            with scope:
                while reason is not None:
                    self.log.info("reconcile", reason=reason)
                    self._reconcile_again = None
                    await self.reconcile_now()
                    reason = self._reconcile_again
        finally:
            if self._reconciling is scope:
                self._reconciling = None

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
        plan = reconcile_plan(self.room.comms.state.get_all(), widgets)
        self.room.apply_plan(plan)
        if plan:
            self.reconciles += 1
            self.log.info("reconciled", **plan.summary())
            if self.on_reconciled is not None:
                self.on_reconciled(plan)
        self.widgets_verified = True
        return plan

    def close(self) -> None:
        """The room closes: a reconcile under way stops here."""
        if self._reconciling is not None:
            self._reconciling.cancel()
