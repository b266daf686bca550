"""IOPub routing: each kernel message to CommState and the doc, outputs to their cell.

The kernel reader hands over whole drained batches; every message is applied at
once to the in-memory stores (CommState, output logs) and only *marks* the doc dirty,
so the reader never waits on Automerge. A malformed message is logged and skipped:
the kernel's mistake never takes the room down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from .capture import OutputCapture
from .comm_state import OUTPUT_MODEL, CommMessageError, CommState, parse_comm_update
from .displays import FinishedCellUpdate, FinishedDisplays
from .outputs import OutputLog, display_id_from_iopub
from .reconcile import CONTROL_TARGET, WIDGET_TARGET

if TYPE_CHECKING:
    from .comm_mirror import CommMirror

log = structlog.get_logger(__name__)


@dataclass(slots=True)
class Execution:
    """One execute request whose outputs go to a cell (or nowhere, for plain `execute`)."""

    msg_id: str
    cell_id: str | None
    log: OutputLog | None
    execution_count: int | None = None
    comm_messages: int = 0
    reply: dict | None = None  # the execute_reply's content, once it came
    idle: bool = False  # the kernel published idle for it

    def outcome(self) -> dict[str, Any]:
        """How it ended, as `execution_done` says it: status ok, error (with ename and
        evalue) or aborted (skipped after an earlier error, or cut off by the kernel)."""
        reply = self.reply if self.reply is not None else {"status": "aborted"}
        status = reply.get("status")
        if status not in ("ok", "error", "aborted"):
            status = "error"
        if status != "error":
            return {"status": status}
        return {
            "status": status,
            "ename": str(reply.get("ename", "")),
            "evalue": str(reply.get("evalue", "")),
        }


@dataclass(slots=True)
class RouterHooks:
    """What the router tells the room; all synchronous and cheap."""

    broadcast: Callable[..., None]
    comm_broadcast: Callable[[str, dict, list[bytes]], None]
    kernel_status: Callable[[str], None]
    cell_outputs_changed: Callable[[Execution], None]
    execution_count: Callable[[str, int], None]
    execution_done: Callable[[Execution], None]
    captured: Callable[[], None]
    is_private_comm: Callable[[str], bool]
    private_comm_msg: Callable[[dict], None]
    widget_opened: Callable[[], None]
    loss_suspected: Callable[[str], None]
    finished_cell_updated: Callable[[FinishedCellUpdate], None]


@dataclass(slots=True)
class RouterStats:
    messages: int = 0
    comm_messages: int = 0
    skipped: int = 0


class IopubRouter:
    """Applies IOPub messages, in kernel order, to the room's in-memory state."""

    def __init__(
        self,
        comm_state: CommState,
        mirror: CommMirror,
        capture: OutputCapture,
        hooks: RouterHooks,
        *,
        log_: Any = None,
    ) -> None:
        self.comm_state = comm_state
        self.mirror = mirror
        self.capture = capture
        self.hooks = hooks
        self.executions: dict[str, Execution] = {}
        self.finished = FinishedDisplays()
        self.stats = RouterStats()
        self.log = log_ or log
        self._handlers: dict[str, Callable[[dict], None]] = {
            "status": self._status,
            "comm_open": self._comm_open,
            "comm_msg": self._comm_msg,
            "comm_close": self._comm_close,
            "execute_input": self._execute_input,
            "stream": self._output,
            "display_data": self._output,
            "execute_result": self._output,
            "error": self._output,
            "clear_output": self._output,
            "update_display_data": self._update_display,
        }

    def on_batch(self, msgs: list[dict]) -> None:
        for msg in msgs:
            self.on_message(msg)

    def on_message(self, msg: dict) -> None:
        self.stats.messages += 1
        msg_type = msg.get("msg_type") or msg.get("header", {}).get("msg_type", "")
        handler = self._handlers.get(msg_type)
        if handler is None:
            return
        try:
            handler(msg)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # incl. CommMessageError
            self.stats.skipped += 1
            self.log.warning("kernel_message_skipped", msg_type=msg_type, reason=str(exc))

    # --- status and executions -------------------------------------------------------

    def _status(self, msg: dict) -> None:
        state = msg["content"]["execution_state"]
        if not isinstance(state, str):
            raise TypeError("execution_state is not a string")
        self.hooks.kernel_status(state)
        if state == "idle":
            execution = self.executions.get(_parent_id(msg))
            if execution is not None:
                execution.idle = True
                self._maybe_done(execution)

    def on_reply(self, msg: dict) -> None:
        """A shell reply: an execute_reply says how its execution ended. The execution
        is done once the kernel is idle too (the two come on different channels)."""
        if msg.get("msg_type") != "execute_reply":
            return
        execution = self.executions.get(_parent_id(msg))
        if execution is not None:
            content = msg.get("content")
            execution.reply = content if isinstance(content, dict) else {}
            self._maybe_done(execution)

    def _maybe_done(self, execution: Execution) -> None:
        if execution.idle and execution.reply is not None:
            self.executions.pop(execution.msg_id, None)
            if execution.cell_id is not None and execution.log is not None:
                self.finished.keep(execution.cell_id, execution.log)
            self.hooks.execution_done(execution)

    def _execute_input(self, msg: dict) -> None:
        execution = self.executions.get(_parent_id(msg))
        count = msg["content"].get("execution_count")
        if execution is not None and isinstance(count, int):
            execution.execution_count = count
            if execution.cell_id is not None:
                self.hooks.execution_count(execution.cell_id, count)

    # --- outputs -----------------------------------------------------------------------

    def _output(self, msg: dict) -> None:
        display_id = display_id_from_iopub(msg)
        if display_id is not None:  # showing a display id again updates where it shows
            self._update_everywhere(display_id, _display_output(msg["content"]))
        parent = _parent_id(msg)
        capturing = self.comm_state.capture_target(parent) if parent else None
        if capturing is not None:
            if self.capture.capture(capturing, msg):
                self.hooks.captured()
            return
        execution = self.executions.get(parent)
        if execution is None or execution.log is None or execution.cell_id is None:
            return
        if execution.log.apply(msg):
            self.hooks.cell_outputs_changed(execution)

    def _update_display(self, msg: dict) -> None:
        content = msg["content"]
        display_id = (content.get("transient") or {}).get("display_id")
        if not display_id:
            raise ValueError("update_display_data without transient.display_id")
        output = _display_output(content)
        self._update_everywhere(display_id, output)
        self.hooks.broadcast("update_display", display_id=display_id, output=output)

    def _update_everywhere(self, display_id: str, output: dict) -> None:
        """Every output carrying `display_id`: running and finished cells, Output widgets."""
        for execution in self.executions.values():
            if execution.log is not None and execution.log.update_display(display_id, output):
                self.hooks.cell_outputs_changed(execution)
        for update in self.finished.update(display_id, output):
            self.hooks.finished_cell_updated(update)
        if self.capture.update_display(display_id, output):
            self.hooks.captured()

    # --- comms ---------------------------------------------------------------------------

    def _count_comm(self, msg: dict) -> None:
        self.stats.comm_messages += 1
        execution = self.executions.get(_parent_id(msg))
        if execution is not None:
            execution.comm_messages += 1

    def _comm_open(self, msg: dict) -> None:
        content = msg["content"]
        if content.get("target_name") == CONTROL_TARGET:  # the daemon's own, not user state
            return
        self._count_comm(msg)
        entry = self.comm_state.open_from_message(content, msg.get("buffers") or [])
        self.mirror.opened(entry.comm_id)
        if entry.target_name == WIDGET_TARGET:
            self.hooks.widget_opened()
        self.hooks.comm_broadcast("comm_open", content, msg.get("buffers") or [])

    def _comm_msg(self, msg: dict) -> None:
        content = msg["content"]
        comm_id = content.get("comm_id")
        if isinstance(comm_id, str) and self.hooks.is_private_comm(comm_id):
            self.hooks.private_comm_msg(msg)
            return
        self._count_comm(msg)
        buffers = msg.get("buffers") or []
        update = parse_comm_update(content, buffers)
        if update is not None and self._apply_update(update, content["data"]["method"]):
            self.mirror.updated(update.comm_id)
        self.hooks.comm_broadcast("comm_msg", content, buffers)

    def _apply_update(self, update: Any, method: str) -> bool:
        """Merge a kernel update; an Output widget's `outputs` are the capture's business."""
        entry = self.comm_state.get(update.comm_id)
        if entry is None:
            self.hooks.loss_suspected(f"update for unknown comm {update.comm_id}")
            return False
        state = update.state
        if entry.model_name == OUTPUT_MODEL and "outputs" in state:
            if method == "update":
                self.capture.set_from_kernel(update.comm_id, state["outputs"])
                self.hooks.captured()
            elif self.capture.owns(update.comm_id):
                # Our own publication echoed back: the capture may have moved on since.
                state = {k: v for k, v in state.items() if k != "outputs"}
        self.comm_state.on_comm_update(
            update.comm_id, state, buffer_paths=update.buffer_paths, buffers=update.buffers
        )
        return True

    def _comm_close(self, msg: dict) -> None:
        content = msg["content"]
        comm_id = content.get("comm_id")
        if not isinstance(comm_id, str):
            raise CommMessageError("comm_close without a comm_id")
        if self.hooks.is_private_comm(comm_id):
            self.hooks.private_comm_msg(msg)
            return
        self._count_comm(msg)
        self.capture.forget(comm_id)
        if self.comm_state.on_comm_close(comm_id) is not None:
            self.mirror.closed(comm_id)
        self.hooks.comm_broadcast("comm_close", content, [])


def _display_output(content: dict) -> dict:
    return {
        "output_type": "display_data",
        "data": content.get("data", {}),
        "metadata": content.get("metadata", {}),
    }


def _parent_id(msg: dict) -> str:
    parent = msg.get("parent_header") or {}
    return parent.get("msg_id", "") if isinstance(parent, dict) else ""
