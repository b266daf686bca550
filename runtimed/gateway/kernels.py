"""Gateway kernels: each one a runtimed kernel in its own room, relayed to front ends.

A front end (jupyter_server's GatewayClient, for JupyterLab or Notebook 7) starts a
kernel over REST; the daemon opens the room `gateway-<kernel id>` and launches the
kernel there, so `runtimed ls`, the page and every client see it and its widgets like
any other. The kernel's relay hook hands over what the room does not keep for itself:
IOPub goes to every connection, a reply (shell, control, stdin) to the connections of
the session that asked.
"""

from __future__ import annotations

import asyncio
import datetime
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import structlog

from .. import messages as m
from ..room import NotebookRoom, RequestFailed

if TYPE_CHECKING:
    from ..kernel import KernelSession
    from ..server import Daemon

log = structlog.get_logger(__name__)

ROOM_PREFIX = "gateway-"


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

    def __init__(self, kernel_id: str, room: NotebookRoom) -> None:
        self.id = kernel_id
        self.room = room
        self.connections: set[Connection] = set()
        self.last_activity = now_iso()
        self.log = log.bind(kernel_id=kernel_id, room_id=room.room_id)
        self._tasks: set[asyncio.Task[Any]] = set()

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
        """Take the kernel's relay hook; the room keeps its own sinks."""
        assert self.room.kernel is not None
        self.room.kernel.relay = self.on_kernel

    def on_kernel(self, channel: str, msgs: list[dict[str, Any]]) -> None:
        if channel == "event":
            for event in msgs:
                self._on_event(event["kind"])
            return
        self.last_activity = now_iso()
        for msg in msgs:
            if channel == "iopub":
                for conn in self.connections:
                    conn.deliver("iopub", msg)
                continue
            session = str(msg["parent_header"].get("session", ""))
            targets = [c for c in self.connections if c.owns_session(session)]
            if not targets:
                self.log.debug("reply for no connection", msg_type=msg["msg_type"])
            for conn in targets:
                conn.deliver(channel, msg)

    def _on_event(self, kind: str) -> None:
        """Lifecycle as jupyter_server tells front ends: a status on IOPub."""
        state = {"restarting": "restarting", "died": "dead"}.get(kind)
        if state is not None:
            self.broadcast_status(state)
        if kind == "shutdown":
            for conn in list(self.connections):
                conn.close()

    def broadcast_status(self, state: str) -> None:
        msg = self.synthetic("status", {"execution_state": state}, parent={})
        for conn in self.connections:
            conn.deliver("iopub", msg)

    def synthetic(self, msg_type: str, content: dict, *, parent: dict) -> dict[str, Any]:
        """A message the daemon writes for front ends in the kernel's name."""
        header = {
            "msg_id": uuid.uuid4().hex,
            "msg_type": msg_type,
            "username": "runtimed",
            "session": f"runtimed-gateway-{self.id}",
            "date": now_iso(),
            "version": "5.3",
        }
        return {"header": header, "parent_header": parent, "metadata": {}, "content": content}

    # --- to the kernel ----------------------------------------------------------------

    def touch(self) -> None:
        self.last_activity = now_iso()

    def spawn(self, work: Any) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


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
        room.keep_open = True  # until DELETE, even once the kernel died: front ends ask
        if cwd is not None and not Path(cwd).is_dir():
            cwd = None  # a front end's directory need not exist here; the daemon's then
        try:
            await room.handle_request(None, m.LaunchKernel(kernel_name=kernel_name, cwd=cwd))
        except RequestFailed:
            room.release()
            raise
        kernel = GatewayKernel(kernel_id, room)
        kernel.attach()
        self._kernels[kernel_id] = kernel
        kernel.log.info("gateway_kernel_started", kernel_name=kernel_name)
        return kernel

    async def shutdown(self, kernel: GatewayKernel) -> None:
        self._kernels.pop(kernel.id, None)
        try:
            await kernel.room.handle_request(None, m.ShutdownKernel())
        except RequestFailed as exc:
            kernel.log.info("gateway_shutdown", reason=exc.message)
        for conn in list(kernel.connections):
            conn.close()
        kernel.room.release()
