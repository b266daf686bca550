"""A front end's `jupyter.widget.control` comm, answered by the daemon.

ipywidgets' front end (JupyterLab's widget manager) opens this comm on every page
load and sends `request_states`, then waits 4 s for `update_states`: a busy kernel
answers too late and the page shows no widgets. The daemon keeps each front end's
control comm to itself and answers from CommState: at once when CommState is known
to equal the kernel (`KernelBinding.comms_verified`), else after one reconcile, which
asks the kernel on the daemon's own control comm. The front end's comm never reaches
the kernel on purpose: ipywidgets keeps a single control comm per kernel (the last
one opened), so a front end's would silence the daemon's reconcile.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from ..comms.comm_state import CommEntry
from ..comms.reconcile import CONTROL_TARGET, WIDGET_TARGET
from ..errors import RequestFailed
from ..wire import messages as m
from .kernels import GatewayKernel

Deliver = Callable[[str, dict[str, Any]], None]


def update_states(entries: Iterable[CommEntry]) -> tuple[dict[str, Any], list[bytes]]:
    """ipywidgets' `update_states` data and buffers for every live widget."""
    states: dict[str, Any] = {}
    paths: list[list[str | int]] = []
    buffers: list[bytes] = []
    for entry in entries:
        if entry.target_name != WIDGET_TARGET:
            continue
        states[entry.comm_id] = {
            "model_name": entry.model_name,
            "model_module": entry.model_module,
            "model_module_version": entry.state.get("_model_module_version", ""),
            "state": entry.state,
        }
        for path, data in entry.buffers.items():
            paths.append([entry.comm_id, "state", *path])
            buffers.append(data)
    return {"method": "update_states", "states": states, "buffer_paths": paths}, buffers


def _method(content: dict[str, Any]) -> Any:
    data = content.get("data")
    return data.get("method") if isinstance(data, dict) else None


class ControlComms:
    """One connection's control comms; `intercept` says whether a message was one."""

    def __init__(self, kernel: GatewayKernel, deliver: Deliver, spawn: Callable[..., None]) -> None:
        self.kernel = kernel
        self.spawn = spawn  # the front end's connection group: answers end with it
        self.deliver = deliver
        self.answered = 0  # update_states sent, for tests and logs
        self._open: set[str] = set()

    def intercept(self, msg_type: str, msg: dict[str, Any]) -> bool:
        content = msg["content"]
        comm_id = content.get("comm_id")
        if not isinstance(comm_id, str):
            return False
        if msg_type == "comm_open":
            if content.get("target_name") != CONTROL_TARGET:
                return False
            self._open.add(comm_id)
            return True
        if comm_id not in self._open:
            return False
        if msg_type == "comm_close":
            self._open.discard(comm_id)
        elif _method(content) == "request_states":
            self.spawn(self._answer, comm_id, msg["header"])
        return True

    async def _answer(self, comm_id: str, parent: dict[str, Any]) -> None:
        room = self.kernel.room
        fresh = room.kernel_binding.comms_verified()
        if not fresh:
            try:
                result = await room.handle_request(None, m.Resync())
            except RequestFailed as exc:
                result = {"available": False, "reason": exc.message}
            if not result.get("available"):
                # As a kernel without ipywidgets would: the front end falls back to
                # asking each widget for its state.
                self._open.discard(comm_id)
                close = {"comm_id": comm_id, "data": {}}
                self.deliver("iopub", self.kernel.synthetic("comm_close", close, parent=parent))
                return
        data, buffers = update_states(room.comms.state.get_all())
        reply = self.kernel.synthetic("comm_msg", {"comm_id": comm_id, "data": data}, parent=parent)
        reply["buffers"] = buffers
        self.answered += 1
        self.kernel.log.info("request_states_answered", widgets=len(data["states"]), fresh=fresh)
        self.deliver("iopub", reply)
