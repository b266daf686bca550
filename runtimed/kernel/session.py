"""KernelSession: one Jupyter kernel, launched or attached, and its lifecycle.

The session speaks Jupyter messages and keeps the kernel's lifecycle state (starting,
idle once it answers, restarting, dead, shutdown; busy and idle from IOPub are the
room's, read once by its router); a `KernelTransport` carries the messages and an
`Inbox` routes what comes back. Each (re)start opens a new connection to the kernel
(`connection`: its tasks held by a runner in the owner's group, the handshake, the
disconnect); `requests` holds what the room asks of the kernel.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import structlog
import zmq
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient

from .connection import KernelConnection
from .connection_files import load_connection_file
from .events import KernelError, KernelEvent, KernelEventKind
from .gateway_target import GatewayTarget
from .inbox import Inbox, IopubSink, RelaySink, ReplySink
from .process import DEFAULT_SHUTDOWN_WAIT, KernelProcess, OwnedKernel, Wiring
from .requests import KernelRequests
from .runner import Runner, TaskStarter
from .transport import KernelTransport, SendChannel
from .zmq_channels import ZmqChannels

log = structlog.get_logger(__name__)

EventSink = Callable[[KernelEvent], None]

HEARTBEAT_TIMEOUT = 3.0
_FINAL = frozenset({"dead", "shutdown"})


class KernelSession(KernelConnection, KernelRequests):
    """One kernel and its channels. Build it with `launch`, `attach` or `connect`."""

    kernel_info: dict | None

    def __init__(
        self,
        *,
        kernel_id: str,
        kernel_name: str,
        process: OwnedKernel | None,
        tasks: TaskStarter,
        on_iopub: IopubSink,
        on_event: EventSink,
        on_reply: ReplySink | None,
    ) -> None:
        self.kernel_id = kernel_id
        self.kernel_name = kernel_name
        self.owned = process is not None
        self.connection_file: str | None = None
        self.status = "starting"
        self.kernel_info = None
        self._process = process
        self._on_event = on_event
        self._log = log.bind(kernel_id=kernel_id, kernel_name=kernel_name)
        self._inbox = Inbox(
            on_iopub=on_iopub,
            on_reply=on_reply,
            on_input_request=self._answer_input,
            logger=self._log,
        )
        self._context = zmq.asyncio.Context()
        # Before any socket exists: an IOPub SUB must never drop (lessons.md).
        self._context.setsockopt(zmq.RCVHWM, 0)
        self._transport: KernelTransport | None = None
        self._tasks = tasks
        self._runner: Runner | None = None
        self._lifecycle = asyncio.Lock()
        self._death_reason = ""
        self._closed = False
        self._startup_timeout = 60.0

    # ------------------------------------------------------------------ construction

    @classmethod
    async def launch(
        cls,
        kernel_name: str = "python3",
        *,
        tasks: TaskStarter,
        cwd: str | None = None,
        on_iopub: IopubSink,
        on_event: EventSink,
        on_reply: ReplySink | None = None,
        startup_timeout: float = 60,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_WAIT,
        gateway: GatewayTarget | None = None,
    ) -> KernelSession:
        """Start a kernel from its kernelspec (provisioner included) and wait until it answers.

        `tasks` runs the connection's runner (the room's group): it must outlive the
        session, which ends its runner on restart, shutdown and aclose.
        `on_reply` receives every shell/control reply no `request()` awaits, e.g. the
        execute_reply of `execute()` and its execution_count. `shutdown_timeout` bounds
        the polite part of a shutdown before SIGKILL. With a `gateway`, the kernel is
        started there (its kernelspec is the gateway's) and reached over its WebSocket.
        """
        kernel_id = str(uuid.uuid4())
        process: OwnedKernel
        if gateway is not None:
            # Imported here: the gateway's HTTP and WebSocket clients (httpx, websockets)
            # are for this rarely used kind of kernel only, not for every daemon's start.
            from .gateway_process import GatewayProcess

            process = GatewayProcess(
                gateway,
                kernel_name,
                startup_timeout=startup_timeout,
                logger=log.bind(kernel_id=kernel_id, kernel_name=kernel_name),
            )
        else:
            process = KernelProcess(kernel_name, kernel_id, shutdown_wait=shutdown_timeout)
        self = cls(
            kernel_id=kernel_id,
            kernel_name=kernel_name,
            process=process,
            tasks=tasks,
            on_iopub=on_iopub,
            on_event=on_event,
            on_reply=on_reply,
        )
        self._startup_timeout = startup_timeout
        self._emit("starting")
        ready = False
        try:
            await self._start(process.start(cwd), startup_timeout)
            ready = True
        except KernelError as exc:
            self._report_died(exc.message, exc.code)
            raise KernelError(exc.code, f"kernel {kernel_name!r}: {self._death_reason}") from None
        finally:
            if not ready:  # failed or cancelled: leave no process behind
                await self.aclose()
                await process.stop(now=True)
        self.connection_file = process.connection_file
        self._started("started")
        return self

    @classmethod
    async def attach(
        cls,
        connection_file: str,
        *,
        tasks: TaskStarter,
        on_iopub: IopubSink,
        on_event: EventSink,
        on_reply: ReplySink | None = None,
        timeout: float = 10,
        heartbeat_timeout: float = HEARTBEAT_TIMEOUT,
    ) -> KernelSession:
        """Bridge a kernel someone else started; it is watched by heartbeat, never killed."""
        info = load_connection_file(connection_file)
        kernel_name = info.get("kernel_name")
        self = cls(
            kernel_id=Path(connection_file).stem.removeprefix("kernel-"),
            kernel_name=kernel_name if isinstance(kernel_name, str) else "",
            process=None,
            tasks=tasks,
            on_iopub=on_iopub,
            on_event=on_event,
            on_reply=on_reply,
        )
        client = AsyncKernelClient(context=self._context)
        try:
            client.load_connection_info(info)
        except Exception as exc:
            await self.aclose()
            raise KernelError("bad_connection_file", f"{connection_file}: {exc}") from None
        self.connection_file = connection_file
        transport = ZmqChannels(client, heartbeat_timeout=heartbeat_timeout, logger=self._log)
        await self._open(transport, timeout, f"kernel at {connection_file}")
        return self

    @classmethod
    async def connect(
        cls,
        transport: KernelTransport,
        *,
        kernel_id: str,
        kernel_name: str = "",
        tasks: TaskStarter,
        on_iopub: IopubSink,
        on_event: EventSink,
        on_reply: ReplySink | None = None,
        timeout: float = 10,
    ) -> KernelSession:
        """Bridge a kernel reached through any transport (not owned: never restarted)."""
        self = cls(
            kernel_id=kernel_id,
            kernel_name=kernel_name,
            process=None,
            tasks=tasks,
            on_iopub=on_iopub,
            on_event=on_event,
            on_reply=on_reply,
        )
        await self._open(transport, timeout, f"kernel {kernel_id}")
        return self

    async def _open(self, transport: KernelTransport, timeout: float, where: str) -> None:
        """Connect a kernel we do not own; on failure nothing is left running."""
        self._emit("starting")
        ready = False
        try:
            await self._connect(transport, timeout)
            ready = True
        except KernelError as exc:
            self._report_died(exc.message, exc.code)
            raise KernelError(exc.code, f"{where}: {exc.message}") from None
        finally:
            if not ready:
                await self.aclose()
        self._started("started")

    async def _start(self, starting: Awaitable[None], timeout: float) -> None:
        """Start (or restart) our process, then connect to it with a fresh client."""
        assert self._process is not None
        await starting
        # The same Session across a restart: a fresh one would count msg_ids from 0.
        wiring = Wiring(self._context, self._log, self._reconnected, HEARTBEAT_TIMEOUT)
        transport = self._process.transport(self._transport, wiring)
        await self._connect(transport, timeout)

    def _started(self, kind: KernelEventKind) -> None:
        self.status = "idle"
        self._log.info("kernel ready", event_kind=kind)
        self._emit(kind)

    # ------------------------------------------------------------------ receiving

    @property
    def relay(self) -> RelaySink | None:
        """Where messages answering another Jupyter session go (the Kernel Gateway API)."""
        return self._inbox.relay

    @relay.setter
    def relay(self, sink: RelaySink | None) -> None:
        self._inbox.relay = sink

    def _answer_input(self, msg: dict) -> None:
        self._log.warning("kernel asked for input; answered with an empty string")
        self._send("stdin", "input_reply", {"value": ""}, parent=msg)

    def _emit(self, kind: KernelEventKind, reason: str = "", code: str = "") -> None:
        self._inbox.call(self._on_event, KernelEvent(kind, reason, code))
        self._inbox.relay_event(kind, reason)

    def _reconnected(self, gap: float) -> None:
        """The transport's connection came back: messages of the gap may be lost."""
        self._emit("reconnected", f"kernel connection regained after {gap:.1f} s")

    def _report_died(self, reason: str, code: str = "kernel_died") -> None:
        """`code`: what the room's `error` broadcast and `kernel_status` say (e.g. a
        launch's no_such_kernel, gateway_unreachable)."""
        if self.status in _FINAL:
            return
        if self.status in ("starting", "restarting"):
            reason = f"failed to {self.status.removesuffix('ing')}: {reason}"
        self.status = "dead"
        self._death_reason = reason
        self._inbox.fail_all(KernelError("kernel_dead", reason))
        self._log.warning("kernel died", reason=reason, code=code)
        self._emit("died", reason, "kernel_died" if code == "kernel_dead" else code)

    # ------------------------------------------------------------------ sending

    def _require_usable(self) -> None:
        if self._closed or self.status == "shutdown":
            raise KernelError("no_kernel", "the kernel session is closed")
        if self.status == "dead":
            raise KernelError("kernel_dead", self._death_reason)

    def _send(
        self,
        channel: SendChannel,
        msg_type: str,
        content: dict,
        *,
        metadata: dict | None = None,
        buffers: list[bytes] | None = None,
        parent: dict | None = None,
    ) -> str:
        """Queue one message without blocking; returns its msg_id."""
        self._require_usable()
        if not isinstance(content, dict):
            raise KernelError("bad_message", f"{msg_type} content must be a dict")
        if self._transport is None:
            raise KernelError("kernel_restarting", "the kernel is restarting")
        return self._transport.send(
            channel, msg_type, content, metadata=metadata, buffers=buffers, parent=parent
        )

    def send_message(self, channel: SendChannel, msg: dict[str, Any]) -> None:
        """Queue a message as another client wrote it (its own header and msg_id), so
        the kernel's replies name that client's request as their parent."""
        self._require_usable()
        if self._transport is None:
            raise KernelError("kernel_restarting", "the kernel is restarting")
        self._transport.send_message(channel, msg)

    # ------------------------------------------------------------------ lifecycle

    async def interrupt(self) -> None:
        """Interrupt the running cell: a signal (or the gateway's REST call) for our
        kernels, a control message otherwise."""
        self._require_usable()
        if self._process is None:
            await self.request("interrupt_request", {}, channel="control", timeout=5)
            return
        await self._process.interrupt()

    async def restart(self) -> None:
        """Restart an owned kernel (dead or alive); IOPub keeps flowing to the same sink."""
        async with self._lifecycle:
            if self._closed:
                raise KernelError("no_kernel", "the kernel session is closed")
            if self._process is None:
                raise KernelError("not_owned", "an attached kernel cannot be restarted from here")
            self.status = "restarting"
            self._emit("restarting")
            await self._disconnect()
            self._inbox.fail_all(KernelError("kernel_restarting", "the kernel is restarting"))
            try:
                await self._start(self._process.restart(), self._startup_timeout)
            except KernelError as exc:
                self._report_died(exc.message, exc.code)
                raise KernelError(exc.code, self._death_reason) from None
            self.connection_file = self._process.connection_file
            self._started("restarted")

    async def shutdown(self) -> None:
        """Stop bridging; an owned kernel is also stopped (request, SIGTERM, SIGKILL)."""
        async with self._lifecycle:
            if self.status == "shutdown":
                return
            await self.aclose()
            if self._process is not None:
                await self._process.stop(now=False)
            self.status = "shutdown"
            self._log.info("kernel shut down")
            self._emit("shutdown")

    async def aclose(self) -> None:
        """Stop every reader and close the sockets; the kernel process is left alone."""
        if self._closed:
            return
        self._closed = True
        await self._disconnect()
        self._inbox.fail_all(KernelError("no_kernel", "the kernel session is closed"))
        self._context.destroy(linger=0)
