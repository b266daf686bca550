"""Gateway kernels: each one a runtimed kernel in its own room, relayed to front ends.

A front end (jupyter_server's GatewayClient, for JupyterLab or Notebook 7) starts a
kernel over REST; the daemon opens the room `gateway-<kernel id>` and launches the
kernel there, so `runtimed ls`, the page and every client see it and its widgets like
any other. The kernel's relay hook hands over what the room does not keep for itself:
IOPub goes to every connection, a reply (shell, control, stdin) to the connections of
the session that asked.
"""

from __future__ import annotations

import datetime
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from ..comms.reconcile import WIDGET_TARGET, Plan
from ..daemon.room import NotebookRoom
from ..errors import RequestFailed
from ..wire import messages as m

if TYPE_CHECKING:
    from ..daemon.server import Daemon
    from ..kernel import KernelSession

log = structlog.get_logger(__name__)

ROOM_PREFIX = "gateway-"
WIDGET_PROTOCOL = "2.1.0"  # ipywidgets 8's comm protocol, checked by its front end on open


class Connection(Protocol):
    """What a kernel needs of a front-end WebSocket (channels.KernelChannels)."""

    def deliver(self, channel: str, msg: dict[str, Any]) -> None: ...

    def owns_session(self, session: str) -> bool: ...

    def close(self) -> None: ...


def now_iso() -> str:
    """jupyter_server's timestamp format (GatewayKernelManager parses exactly this)."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class GatewayKernel:
    """One kernel started through the gateway: its room, its front-end connections."""

    def __init__(self, kernel_id: str, room: NotebookRoom, cwd: str | None) -> None:
        self.id = kernel_id
        self.room = room
        self.cwd = cwd
        self.connections: set[Connection] = set()
        self.last_activity = now_iso()
        self.log = log.bind(kernel_id=kernel_id, room_id=room.room_id)

    @property
    def session(self) -> KernelSession | None:
        return self.room.kernel

    @property
    def gone(self) -> bool:
        """Its room closed: the daemon is stopping."""
        return self.room.closed

    def model(self) -> dict[str, Any]:
        """jupyter_server's kernel model, as GET /api/kernels/{id} returns it."""
        kernel = self.room.kernel
        return {
            "id": self.id,
            "name": kernel.kernel_name if kernel is not None else "",
            "last_activity": self.last_activity,
            "execution_state": self.room.kernel_status,
            "connections": len(self.connections),
        }

    # --- from the kernel --------------------------------------------------------------

    def attach(self) -> None:
        """Take the kernel's relay hook (the room keeps its own sinks) and the room's
        reconcile results."""
        assert self.room.kernel is not None
        self.room.kernel.relay = self.on_kernel
        self.room.kernel_binding.on_reconciled = self.on_reconciled

    def on_reconciled(self, plan: Plan) -> None:
        """IOPub lost something the front ends never saw either: send them the
        difference too, at its place in the stream, as the kernel's own messages."""
        for widget in plan.added:
            content = {"comm_id": widget.comm_id, "target_name": WIDGET_TARGET}
            self._correct("comm_open", content, widget.state, widget.buffers)
        for widget in plan.updated:
            content = {"comm_id": widget.comm_id}
            self._correct("comm_msg", content, widget.state, widget.buffers, method="update")
        for comm_id in plan.removed:
            self._deliver_all(self.synthetic("comm_close", {"comm_id": comm_id, "data": {}}))

    def _correct(
        self,
        msg_type: str,
        content: dict[str, Any],
        state: dict[str, Any],
        buffers: dict[Any, bytes],
        method: str | None = None,
    ) -> None:
        data: dict[str, Any] = {"state": state, "buffer_paths": [list(p) for p in buffers]}
        if method is not None:
            data["method"] = method
        msg = self.synthetic(msg_type, {**content, "data": data})
        msg["metadata"] = {"version": WIDGET_PROTOCOL}
        msg["buffers"] = list(buffers.values())
        self._deliver_all(msg)

    def _deliver_all(self, msg: dict[str, Any]) -> None:
        for conn in self.connections:
            conn.deliver("iopub", msg)

    def on_kernel(self, channel: str, msgs: list[dict[str, Any]]) -> None:
        if channel == "event":
            for event in msgs:
                self._on_event(event["kind"])
            return
        self.last_activity = now_iso()
        for msg in msgs:
            if channel == "iopub":
                if not self._private(msg):
                    self._deliver_all(msg)
                continue
            session = str(msg["parent_header"].get("session", ""))
            targets = [c for c in self.connections if c.owns_session(session)]
            if not targets:
                self.log.debug("reply for no connection", msg_type=msg["msg_type"])
            for conn in targets:
                conn.deliver(channel, msg)

    def _private(self, msg: dict[str, Any]) -> bool:
        """The daemon's own widget control comm (reconcile answers): not a front end's."""
        comm_id = msg["content"].get("comm_id")
        control = self.room.kernel_binding.control
        return isinstance(comm_id, str) and control is not None and control.owns(comm_id)

    def _on_event(self, kind: str) -> None:
        """Lifecycle as jupyter_server tells front ends: a status on IOPub."""
        state = {"restarting": "restarting", "died": "dead"}.get(kind)
        if state is not None:
            self.broadcast_status(state)
        if kind == "shutdown":
            for conn in list(self.connections):
                conn.close()

    def broadcast_status(self, state: str) -> None:
        self._deliver_all(self.synthetic("status", {"execution_state": state}))

    def synthetic(
        self, msg_type: str, content: dict, *, parent: dict | None = None
    ) -> dict[str, Any]:
        """A message the daemon writes for front ends in the kernel's name."""
        header = {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "username": "runtimed",
            "session": f"runtimed-gateway-{self.id}",
            "date": now_iso(),
            "version": "5.3",
        }
        return {
            "header": header,
            "parent_header": parent or {},
            "metadata": {},
            "content": content,
        }

    # --- to the kernel ----------------------------------------------------------------

    def touch(self) -> None:
        self.last_activity = now_iso()


class GatewayKernels:
    """The daemon's gateway kernels by id."""

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self._kernels: dict[str, GatewayKernel] = {}

    def get(self, kernel_id: str) -> GatewayKernel | None:
        kernel = self._kernels.get(kernel_id)
        if kernel is not None and kernel.gone:
            self._kernels.pop(kernel_id, None)
            return None
        return kernel

    def all(self) -> list[GatewayKernel]:
        return [k for k in list(self._kernels.values()) if self.get(k.id) is not None]

    async def start(self, kernel_name: str, cwd: str | None) -> GatewayKernel:
        """Open a fresh room and launch the kernel in it; RequestFailed when it cannot start."""
        kernel_id = str(uuid.uuid4())
        room = await self.daemon.open_room(ROOM_PREFIX + kernel_id, None)
        room.occupancy.keep_open = True  # until DELETE, even once the kernel died: front ends ask
        if cwd is not None and not Path(cwd).is_dir():
            cwd = None  # a front end's directory need not exist here; the daemon's then
        try:
            await room.handle_request(None, m.LaunchKernel(kernel_name=kernel_name, cwd=cwd))
        except RequestFailed:
            room.occupancy.release()
            raise
        kernel = GatewayKernel(kernel_id, room, cwd)
        kernel.attach()
        self._kernels[kernel_id] = kernel
        kernel.log.info("gateway_kernel_started", kernel_name=kernel_name)
        return kernel

    async def restart(self, kernel: GatewayKernel) -> None:
        """Restart the kernel; a dead one is started again in its room (a new process,
        the same gateway id), as JupyterLab's restart button expects."""
        room = kernel.room
        if room.kernel is not None and room.kernel_status != "dead":
            await room.handle_request(None, m.RestartKernel())
            return
        name = None
        if room.kernel is not None:
            name = room.kernel.kernel_name
            room.kernel.relay = None  # its shutdown ends the old process, not the connections
        kernel.broadcast_status("restarting")
        await room.handle_request(None, m.LaunchKernel(kernel_name=name, cwd=kernel.cwd))
        kernel.attach()

    async def shutdown(self, kernel: GatewayKernel) -> None:
        self._kernels.pop(kernel.id, None)
        try:
            await kernel.room.handle_request(None, m.ShutdownKernel())
        except RequestFailed as exc:
            kernel.log.info("gateway_shutdown", reason=exc.message)
        for conn in list(kernel.connections):
            conn.close()
        kernel.room.occupancy.release()
