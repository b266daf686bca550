"""Ending at the kernel's widget state, whatever IOPub lost on the way.

A kernel's PUB socket drops messages when the machine is overloaded, and a kernel
attached late made widgets the daemon never saw. ipywidgets answers `request_states`
on its `jupyter.widget.control` comm with every live widget's full state in one
message; `plan` compares that answer with CommState and says exactly what to add,
update and remove. The room applies the plan as it applies live kernel messages, so
clients see ordinary comm broadcasts and one doc change (none when nothing differs).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import anyio
import structlog

from .comm_state import CommEntry

log = structlog.get_logger(__name__)

CONTROL_TARGET = "jupyter.widget.control"
CONTROL_VERSION = "1.0.0"
WIDGET_TARGET = "jupyter.widget"
_REFERENCE = re.compile(r"IPY_MODEL_([0-9A-Za-z_-]+)")

BufferPath = tuple[str | int, ...]


class ReconcileUnavailable(Exception):
    """This kernel cannot tell its widget states (no ipywidgets, or it does not answer)."""


@dataclass(frozen=True, slots=True)
class KernelWidget:
    """One widget as the kernel holds it."""

    comm_id: str
    state: dict[str, Any]
    buffers: dict[BufferPath, bytes]


@dataclass(frozen=True, slots=True)
class Plan:
    """What brings CommState to the kernel's answer; `added` is in a safe opening order."""

    added: list[KernelWidget] = field(default_factory=list)
    updated: list[KernelWidget] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.updated or self.removed)

    def summary(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "updated": len(self.updated),
            "removed": len(self.removed),
        }


def parse_update_states(data: dict[str, Any], buffers: list[bytes]) -> list[KernelWidget]:
    """ipywidgets' `update_states` reply: states by model id, buffers by path from the root."""
    states = data.get("states")
    paths = data.get("buffer_paths") or []
    if not isinstance(states, dict) or not isinstance(paths, list) or len(paths) != len(buffers):
        raise ValueError("update_states: states must be an object and buffers match their paths")
    by_widget: dict[str, dict[BufferPath, bytes]] = {}
    for path, data_ in zip(paths, buffers, strict=True):
        # [model_id, "state", key, ...]: the buffer's place inside that widget's state
        if not isinstance(path, list) or len(path) < 3 or path[1] != "state":
            raise ValueError(f"update_states: unexpected buffer path {path!r}")
        by_widget.setdefault(str(path[0]), {})[tuple(path[2:])] = bytes(data_)
    widgets = []
    for comm_id, model in states.items():
        state = model.get("state") if isinstance(model, dict) else None
        if not isinstance(state, dict):
            raise ValueError(f"update_states: widget {comm_id} has no state object")
        widgets.append(KernelWidget(comm_id, state, by_widget.get(comm_id, {})))
    return widgets


def plan(entries: Iterable[CommEntry], kernel: list[KernelWidget]) -> Plan:
    """Compare CommState with the kernel's widgets; comms of other targets are left alone."""
    live = {entry.comm_id: entry for entry in entries}
    truth = {widget.comm_id: widget for widget in kernel}
    added = [w for cid, w in truth.items() if cid not in live]
    updated = [
        w
        for cid, w in truth.items()
        if cid in live and (live[cid].state != w.state or live[cid].buffers != w.buffers)
    ]
    removed = [
        comm_id
        for comm_id, entry in live.items()
        if entry.target_name == WIDGET_TARGET and comm_id not in truth
    ]
    return Plan(opening_order(added), updated, removed)


def opening_order(widgets: list[KernelWidget]) -> list[KernelWidget]:
    """Children before the widgets that reference them (`IPY_MODEL_<id>` in their state)."""
    by_id = {widget.comm_id: widget for widget in widgets}
    ordered: list[KernelWidget] = []
    visiting: set[str] = set()
    done: set[str] = set()

    def visit(widget: KernelWidget) -> None:
        if widget.comm_id in done or widget.comm_id in visiting:
            return  # already placed, or a reference cycle (kept in discovery order)
        visiting.add(widget.comm_id)
        for ref in sorted(_references(widget.state)):
            if ref in by_id:
                visit(by_id[ref])
        visiting.discard(widget.comm_id)
        done.add(widget.comm_id)
        ordered.append(widget)

    for widget in sorted(widgets, key=lambda w: w.comm_id):
        visit(widget)
    return ordered


def _references(value: Any) -> set[str]:
    if isinstance(value, str):
        return set(_REFERENCE.findall(value))
    if isinstance(value, dict):
        return set().union(*map(_references, value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*map(_references, value)) if value else set()
    return set()


class WidgetControl:
    """The daemon's own `jupyter.widget.control` comm with one kernel.

    It is private: the router hands its messages here and they never reach CommState,
    the doc or clients. It is opened only in a kernel that uses ipywidgets, at the
    first reconcile after a `jupyter.widget` comm appeared, or after a
    `comm_info_request` listed widget comms (an attached kernel): a kernel without
    ipywidgets would log "No such comm target registered" to its stderr, which also
    reorders its next cell's streams. Such a kernel sees no comm traffic from us.
    """

    def __init__(
        self,
        send_comm: Callable[..., str],
        widget_comms: Callable[[], Awaitable[dict[str, Any]]],
        on_states: Callable[[list[KernelWidget]], Plan],
        *,
        timeout: float = 10.0,
        log_: Any = None,
    ) -> None:
        self._send_comm = send_comm
        # The kernel's comm_info_reply content for target jupyter.widget.
        self._widget_comms = widget_comms
        self.widgets_in_use = False
        # Called in kernel order, at the reply's place in the IOPub stream: anything the
        # kernel published after its answer is newer and must not be undone.
        self._on_states = on_states
        self.timeout = timeout
        self.log = log_ or log
        self.comm_id: str | None = None
        self.unavailable_reason: str | None = None
        self._reply: asyncio.Future[Plan] | None = None
        self._lock = asyncio.Lock()

    def open(self) -> None:
        """Open (or reopen) the control comm; the kernel answers nothing unless it fails."""
        self.comm_id = uuid.uuid4().hex
        self.unavailable_reason = None
        self._send_comm(
            self.comm_id,
            {},
            msg_type="comm_open",
            target_name=CONTROL_TARGET,
            metadata={"version": CONTROL_VERSION},
        )

    def owns(self, comm_id: str) -> bool:
        return comm_id == self.comm_id

    def reset(self) -> None:
        """The kernel restarted: nothing is open, and ipywidgets is not imported yet."""
        self.comm_id = None
        self.unavailable_reason = None
        self.widgets_in_use = False

    def widgets_seen(self) -> None:
        """The kernel opened a widget: ipywidgets is there now, worth another try."""
        self.widgets_in_use = True
        if self.unavailable_reason is not None:
            self.unavailable_reason = None
            self.comm_id = None

    def on_message(self, msg: dict[str, Any]) -> None:
        """A message on our comm: the reply to request_states, or the kernel closing it."""
        content = msg.get("content") or {}
        if msg.get("msg_type") == "comm_close":
            self._unavailable(
                "ipywidgets is not imported in the kernel yet, so it has no widget control "
                "comm; reconcile waits for the first widget"
            )
            return
        data = content.get("data") or {}
        if data.get("method") != "update_states" or self._reply is None or self._reply.done():
            return
        try:
            widgets = parse_update_states(data, msg.get("buffers") or [])
        except ValueError as exc:
            self._reply.set_exception(ReconcileUnavailable(str(exc)))
            return
        self._reply.set_result(self._on_states(widgets))

    def _unavailable(self, reason: str) -> None:
        if self.unavailable_reason is None:
            self.log.info("reconcile_unavailable", reason=reason)
        self.unavailable_reason = reason
        self.comm_id = None
        if self._reply is not None and not self._reply.done():
            self._reply.set_exception(ReconcileUnavailable(reason))

    async def _ask_for_widget_comms(self) -> None:
        """`comm_info_request`: the one question a kernel without ipywidgets can answer."""
        reply = await self._widget_comms()
        comms = reply.get("comms") if reply.get("status") == "ok" else None
        if not isinstance(comms, dict):
            raise ReconcileUnavailable("the kernel did not answer comm_info_request")
        if not comms:
            raise ReconcileUnavailable(
                "no widget comms in the kernel (ipywidgets not in use): "
                "the widget control comm stays closed"
            )
        self.widgets_in_use = True

    async def reconcile(self) -> Plan:
        """Ask for every widget's state and apply the difference; the plan that was applied.

        ReconcileUnavailable when the kernel cannot say (no ipywidgets, no answer).
        """
        async with self._lock:
            if not self.widgets_in_use:
                await self._ask_for_widget_comms()
            if self.unavailable_reason is not None:
                raise ReconcileUnavailable(self.unavailable_reason)
            if self.comm_id is None:
                self.open()
            assert self.comm_id is not None
            self._reply = asyncio.get_running_loop().create_future()
            self._send_comm(self.comm_id, {"method": "request_states"})
            try:
                with anyio.fail_after(self.timeout):
                    return await self._reply
            except TimeoutError:
                self._unavailable(f"no update_states within {self.timeout:g} s")
                raise ReconcileUnavailable(self.unavailable_reason or "") from None
            finally:
                self._reply = None
