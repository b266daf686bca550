"""IOPub routing: each kernel message to the comm store or its cell, as effects.

The kernel reader hands over whole drained batches. The router applies each message
at once to the in-memory stores (the CommStore, the executions' output logs) and
returns what the room must still do: broadcast, mark a cell's outputs dirty, settle a
finished execution, set the kernel status. The room applies those effects, so it stays
visibly the doc's only writer and the router calls nothing back. A malformed message is
logged and skipped: the kernel's mistake never takes the room down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from ..comms.reconcile import CONTROL_TARGET, WIDGET_TARGET
from ..comms.store import CommStore
from ..kernel.decode import parent_id
from ..outputs import (
    FinishedCellUpdate,
    FinishedDisplays,
    OutputLog,
    display_id_from_iopub,
    display_update_from_iopub,
)
from ..wire import Broadcast

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


# --- effects: what the room does with a routed message ------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Broadcast to every peer; `comm_event`: a live comm message a comm_sync can replace."""

    event: Broadcast
    comm_event: bool = False


@dataclass(frozen=True, slots=True)
class KernelStatus:
    status: str


@dataclass(frozen=True, slots=True)
class OutputsChanged:
    """A running cell's output log changed: the doc gets it with the next flush."""

    execution: Execution


@dataclass(frozen=True, slots=True)
class ExecutionCount:
    cell_id: str
    count: int


@dataclass(frozen=True, slots=True)
class ExecutionDone:
    execution: Execution


@dataclass(frozen=True, slots=True)
class ControlMessage:
    """A message on the daemon's own control comm (reconcile), not user state."""

    msg: dict[str, Any]


@dataclass(frozen=True, slots=True)
class WidgetOpened:
    pass


@dataclass(frozen=True, slots=True)
class LossSuspected:
    reason: str


Effect = (
    Send
    | KernelStatus
    | OutputsChanged
    | ExecutionCount
    | ExecutionDone
    | ControlMessage
    | WidgetOpened
    | LossSuspected
    | FinishedCellUpdate
)


@dataclass(slots=True)
class RouterStats:
    messages: int = 0
    comm_messages: int = 0
    skipped: int = 0


class IopubRouter:
    """Applies IOPub messages, in kernel order, to the in-memory stores; returns effects."""

    def __init__(
        self,
        comms: CommStore,
        *,
        is_control_comm: Callable[[str], bool],
        log_: Any = None,
    ) -> None:
        self.comms = comms
        self.is_control_comm = is_control_comm  # a question, not a hook: the reconcile comm
        self.executions: dict[str, Execution] = {}
        self.finished = FinishedDisplays()
        self.stats = RouterStats()
        self.log = log_ or log
        self._handlers: dict[str, Callable[[dict, list[Effect]], None]] = {
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

    # --- what the room tells the router ------------------------------------------------

    def started(self, execution: Execution) -> None:
        """An execute request went out: its outputs go to `execution` from now on."""
        self.executions[execution.msg_id] = execution
        if execution.cell_id is not None:
            self.finished.forget(execution.cell_id)

    def reset(self) -> list[Execution]:
        """The kernel went away: no display id will update, and the executions still
        pending (returned) will never finish."""
        pending = list(self.executions.values())
        self.executions.clear()
        self.finished.clear()
        return pending

    # --- routing -----------------------------------------------------------------------

    def route(self, msg: dict) -> list[Effect]:
        """One IOPub message; what the room must do about it."""
        self.stats.messages += 1
        msg_type = msg.get("msg_type") or msg.get("header", {}).get("msg_type", "")
        handler = self._handlers.get(msg_type)
        effects: list[Effect] = []
        if handler is None:
            return effects
        try:
            handler(msg, effects)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:  # incl. CommMessageError
            self.stats.skipped += 1
            self.log.warning("kernel_message_skipped", msg_type=msg_type, reason=str(exc))
        return effects

    # --- status and executions -----------------------------------------------------------

    def _status(self, msg: dict, effects: list[Effect]) -> None:
        state = msg["content"]["execution_state"]
        if not isinstance(state, str):
            raise TypeError("execution_state is not a string")
        effects.append(KernelStatus(state))
        if state == "idle":
            execution = self.executions.get(parent_id(msg))
            if execution is not None:
                execution.idle = True
                self._maybe_done(execution, effects)

    def route_reply(self, msg: dict) -> list[Effect]:
        """A shell reply: an execute_reply says how its execution ended. The execution
        is done once the kernel is idle too (the two come on different channels)."""
        effects: list[Effect] = []
        execution = self.executions.get(parent_id(msg))
        if msg.get("msg_type") == "execute_reply" and execution is not None:
            content = msg.get("content")
            execution.reply = content if isinstance(content, dict) else {}
            self._maybe_done(execution, effects)
        return effects

    def _maybe_done(self, execution: Execution, effects: list[Effect]) -> None:
        if execution.idle and execution.reply is not None:
            self.executions.pop(execution.msg_id, None)
            if execution.cell_id is not None and execution.log is not None:
                self.finished.keep(execution.cell_id, execution.log)
            effects.append(ExecutionDone(execution))

    def _execute_input(self, msg: dict, effects: list[Effect]) -> None:
        execution = self.executions.get(parent_id(msg))
        count = msg["content"].get("execution_count")
        if execution is not None and isinstance(count, int):
            execution.execution_count = count
            if execution.cell_id is not None:
                effects.append(ExecutionCount(execution.cell_id, count))

    # --- outputs -------------------------------------------------------------------------

    def _output(self, msg: dict, effects: list[Effect]) -> None:
        display_id = display_id_from_iopub(msg)
        if display_id is not None:  # showing a display id again updates where it shows
            self._update_everywhere(display_id, _display_output(msg["content"]), effects)
        parent = parent_id(msg)
        capturing = self.comms.capture_target(parent)
        if capturing is not None:
            self.comms.capture_output(capturing, msg)
            return
        execution = self.executions.get(parent)
        if execution is None or execution.log is None or execution.cell_id is None:
            return
        if execution.log.apply(msg):
            effects.append(OutputsChanged(execution))

    def _update_display(self, msg: dict, effects: list[Effect]) -> None:
        update = display_update_from_iopub(msg)  # OutputError (a ValueError) if malformed
        assert update is not None  # dispatched here by msg_type
        self._update_everywhere(update.display_id, update.output, effects)
        fields = {"display_id": update.display_id, "output": update.output}
        effects.append(Send(Broadcast("update_display", fields)))

    def _update_everywhere(self, display_id: str, output: dict, effects: list[Effect]) -> None:
        """Every output carrying `display_id`: running and finished cells, Output widgets."""
        for execution in self.executions.values():
            if execution.log is not None and execution.log.update_display(display_id, output):
                effects.append(OutputsChanged(execution))
        effects.extend(self.finished.update(display_id, output))
        self.comms.update_display(display_id, output)

    # --- comms ---------------------------------------------------------------------------

    def _count_comm(self, msg: dict) -> None:
        self.stats.comm_messages += 1
        execution = self.executions.get(parent_id(msg))
        if execution is not None:
            execution.comm_messages += 1

    def _comm_open(self, msg: dict, effects: list[Effect]) -> None:
        content = msg["content"]
        if content.get("target_name") == CONTROL_TARGET:  # the daemon's own, not user state
            return
        self._count_comm(msg)
        effects.append(Send(self.comms.kernel_open(content, msg.get("buffers") or []), True))
        if content.get("target_name") == WIDGET_TARGET:
            effects.append(WidgetOpened())

    def _comm_msg(self, msg: dict, effects: list[Effect]) -> None:
        content = msg["content"]
        if self._is_control(content):
            effects.append(ControlMessage(msg))
            return
        self._count_comm(msg)
        event, lost = self.comms.kernel_update(content, msg.get("buffers") or [])
        if lost:
            effects.append(LossSuspected(f"update for unknown comm {content['comm_id']}"))
        effects.append(Send(event, True))

    def _comm_close(self, msg: dict, effects: list[Effect]) -> None:
        content = msg["content"]
        if self._is_control(content):
            effects.append(ControlMessage(msg))
            return
        self._count_comm(msg)
        effects.append(Send(self.comms.kernel_close(content), True))

    def _is_control(self, content: Any) -> bool:
        comm_id = content.get("comm_id") if isinstance(content, dict) else None
        return isinstance(comm_id, str) and self.is_control_comm(comm_id)


def _display_output(content: dict) -> dict:
    return {
        "output_type": "display_data",
        "data": content.get("data", {}),
        "metadata": content.get("metadata", {}),
    }
