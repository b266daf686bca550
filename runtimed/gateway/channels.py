"""`/api/kernels/{id}/channels`: one front end's WebSocket to a gateway kernel.

Frames from the front end go to the kernel as written (its header, its msg_id), so the
kernel's replies name the front end's requests. Messages to the front end wait in an
`Outbox` drained by one writer task: the kernel reader never waits on a slow socket,
and a lagging front end gets merged widget updates, never a wrong value.

What the room must know is applied on the way in: an `execute_request` is tracked as
an execution (so a widget burst is reconciled afterwards), and a front end's widget
update goes into CommState and the doc at once, as a runtimed client's `send_comm`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import TaskGroup
from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from ..comms.comm_state import CommMessageError, parse_comm_update
from ..daemon.iopub import Execution
from ..daemon.tasks import logged
from ..kernel import KernelError
from ..kernel import ws_codec as codec
from .control import ControlComms
from .kernels import GatewayKernel
from .outbox import DEFAULT_BOUND, Outbox

_COMM_TYPES = frozenset({"comm_open", "comm_msg", "comm_close"})


class KernelChannels:
    """One WebSocket between a front end and a gateway kernel."""

    def __init__(
        self,
        ws: ServerConnection,
        kernel: GatewayKernel,
        session_id: str,
        *,
        bound: int = DEFAULT_BOUND,
    ) -> None:
        self.ws = ws
        self.kernel = kernel
        self.sessions = {session_id} if session_id else set()
        self.outbox = Outbox(bound)
        self.control = ControlComms(kernel, self.deliver, self._spawn)
        self.log = kernel.log.bind(session=session_id, remote=str(ws.remote_address))
        self._wakeup = asyncio.Event()
        self._closing = False
        self._tasks: TaskGroup | None = None  # the connection's group: its writer, its answers

    # --- kernel side (called synchronously from the kernel reader) -----------------------

    def deliver(self, channel: str, msg: dict[str, Any]) -> None:
        self.outbox.push(channel, msg)
        self._wakeup.set()

    def owns_session(self, session: str) -> bool:
        return session in self.sessions

    def close(self) -> None:
        """Send what is queued, then close (the kernel was shut down)."""
        self._closing = True
        self._wakeup.set()

    # --- the connection -------------------------------------------------------------------

    async def run(self) -> None:
        self.kernel.connections.add(self)
        self.log.info("gateway_connected", connections=len(self.kernel.connections))
        try:
            async with anyio.create_task_group() as tasks:
                self._tasks = tasks
                tasks.start_soon(self._write)
                await self._read()
                tasks.cancel_scope.cancel()
        finally:
            self.kernel.connections.discard(self)
            await self.ws.close()
            self.log.info(
                "gateway_disconnected", merged=self.outbox.merged, unsent=len(self.outbox)
            )

    async def _read(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            while True:
                frame = await self.ws.recv(decode=False)  # text frames may hold binary
                try:
                    channel, msg = codec.decode(frame)
                    self.kernel.touch()
                    self._to_kernel(channel, msg)
                except (codec.CodecError, KeyError, TypeError, ValueError, AttributeError) as exc:
                    # The front end's mistake: skipped, the connection goes on.
                    self.log.warning("gateway_bad_frame", reason=str(exc))

    def _spawn(self, func: Callable[..., Awaitable[Any]], *args: Any) -> None:
        if self._tasks is not None:
            self._tasks.start_soon(logged, self.log, func, *args)

    async def _write(self) -> None:
        with contextlib.suppress(ConnectionClosed):  # the reader sees it too, and ends
            while True:
                item = self.outbox.pop()
                if item is None:
                    if self._closing:
                        await self.ws.close()
                        return
                    self._wakeup.clear()
                    await self._wakeup.wait()
                    continue
                await self.ws.send(codec.encode(item.msg, item.channel))

    # --- front end to kernel ----------------------------------------------------------------

    def _to_kernel(self, channel: str, msg: dict[str, Any]) -> None:
        header = msg["header"]
        session = header.get("session")
        if isinstance(session, str) and session:
            self.sessions.add(session)
        msg_type = header["msg_type"]
        if channel == "shell" and msg_type in _COMM_TYPES:
            if self.control.intercept(msg_type, msg):
                return
            if msg_type == "comm_msg":
                self._apply_update(msg)
        kernel = self.kernel.session
        if kernel is None:
            self.log.info("gateway_no_kernel", msg_type=msg_type)
            return
        if msg_type == "execute_request":
            self.kernel.room.kernel_binding.router.started(Execution(header["msg_id"], None, None))
        try:
            kernel.send_message(channel, msg)
        except KernelError as exc:
            self.log.info("gateway_not_sent", msg_type=msg_type, reason=exc.message)

    def _apply_update(self, msg: dict[str, Any]) -> None:
        """The front end moved a widget: CommState and the doc follow now (the kernel's
        echo_update, in kernel order, merges to the same state)."""
        room = self.kernel.room
        try:
            update = parse_comm_update(msg["content"], msg["buffers"])
        except CommMessageError as exc:
            self.log.info("gateway_comm_update_ignored", reason=str(exc))
            return
        if update is not None:
            room.comms.client_update(update)
