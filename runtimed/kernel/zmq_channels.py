"""The ZMQ transport: one socket per Jupyter channel, one reader task per socket.

Each socket's reader routes whole batches: it awaits one message, takes every other one
already waiting, and hands them over together, because a widget burst outruns any
per-message reader (docs/lessons.md). The IOPub SUB never drops (RCVHWM 0, set on the
context before any socket exists). Attached kernels, and those a remote provisioner
launched, are watched by heartbeat; an owned kernel's process is watched by the session.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import anyio
import structlog
import zmq
import zmq.asyncio
from anyio.abc import TaskStatus
from jupyter_client.asynchronous import AsyncKernelClient

from ..log_safety import register_secret
from .decode import MessageDecoder
from .events import KernelError
from .transport import Deliver, ReceiveChannel, SendChannel

log = structlog.get_logger(__name__)

MAX_BATCH = 1000  # messages handed over per drain, so one flood cannot starve the loop
RECEIVE_CHANNELS: tuple[ReceiveChannel, ...] = ("iopub", "shell", "control", "stdin")


async def pump_messages(
    sock: zmq.asyncio.Socket,
    decoder: MessageDecoder,
    deliver: Callable[[list[dict]], None],
    logger: Any = log,
) -> None:
    """Forever: await one message, take every other one already waiting, deliver the batch.

    One await per batch instead of per message is what lets the reader keep up with a
    kernel's widget burst. A failing `deliver` is logged; the pump goes on.
    """
    drain = zmq.Socket.shadow(sock.underlying)
    while True:
        raw = [await sock.recv_multipart()]
        while len(raw) < MAX_BATCH:
            try:
                raw.append(drain.recv_multipart(zmq.NOBLOCK))
            except zmq.Again:
                break
        batch = [msg for msg in map(decoder.decode, raw) if msg is not None]
        if batch:
            try:
                deliver(batch)
            except Exception:
                logger.exception("kernel message handler failed", messages=len(batch))


class ZmqChannels:
    """A `KernelTransport` over the ports of one connection (a jupyter_client client)."""

    def __init__(
        self,
        client: AsyncKernelClient,
        *,
        heartbeat_timeout: float | None = None,
        logger: Any = log,
    ) -> None:
        self.client = client
        self._heartbeat_timeout = heartbeat_timeout
        self._log = logger
        self._sockets: dict[str, zmq.asyncio.Socket] = {}
        self._gone = ""

    @property
    def session_id(self) -> str:
        return self.client.session.session

    async def serve(
        self, deliver: Deliver, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Readers (and the heartbeat) until cancelled; ready once stdin is connected.

        Raises KernelError `kernel_dead` when the heartbeat goes silent.
        """
        monitor = self._open()
        decoder = MessageDecoder(self.client.session, self._log)
        try:
            async with anyio.create_task_group() as tg:
                for channel in RECEIVE_CHANNELS:
                    handler = functools.partial(deliver, channel)
                    tg.start_soon(
                        pump_messages, self._sockets[channel], decoder, handler, self._log
                    )
                if self._heartbeat_timeout is not None:
                    tg.start_soon(self._heartbeat, self._heartbeat_timeout, tg.cancel_scope)
                await self._stdin_connected(monitor)
                task_status.started()
                await anyio.sleep_forever()
        finally:
            self._close_sockets()
        raise KernelError("kernel_dead", self._gone)

    def _open(self) -> zmq.asyncio.Socket:
        """Our sockets on the client's ports; returns the stdin connection monitor."""
        client = self.client
        register_secret(client.session.key)  # signs every message: never in a log line
        identity = client.session.bsession  # stdin requests go to the shell's identity
        stdin, monitor = self._connect_stdin(identity)
        self._sockets = {
            "iopub": client.connect_iopub(),
            "shell": client.connect_shell(identity=identity),
            "control": client.connect_control(identity=identity),
            "stdin": stdin,
        }
        return monitor

    def _connect_stdin(self, identity: bytes) -> tuple[zmq.asyncio.Socket, zmq.asyncio.Socket]:
        """The stdin DEALER, watched: the kernel's ROUTER drops an input_request sent
        before our connection's handshake completed, and the cell would hang."""
        client = self.client
        sock = client.context.socket(zmq.DEALER)
        sock.linger = 1000
        sock.identity = identity
        if client.curve_publickey is not None:
            sock.curve_secretkey = client.curve_secretkey
            sock.curve_publickey = client.curve_publickey
            sock.curve_serverkey = client.curve_publickey
        monitor = sock.get_monitor_socket(zmq.EVENT_HANDSHAKE_SUCCEEDED)
        sock.connect(client._make_url("stdin"))
        return sock, monitor

    async def _stdin_connected(self, monitor: zmq.asyncio.Socket) -> None:
        try:
            await monitor.recv_multipart()  # only HANDSHAKE_SUCCEEDED is subscribed
        finally:
            self._sockets["stdin"].disable_monitor()
            monitor.close(linger=0)

    async def _heartbeat(self, timeout: float, scope: anyio.CancelScope) -> None:
        """Ping the hb socket each third of the timeout; silence for the timeout ends
        the serving (the scope is cancelled and `serve` raises)."""
        interval = timeout / 3
        last_beat = anyio.current_time()
        sock: zmq.asyncio.Socket | None = None
        try:
            while True:
                if sock is None:
                    sock = self.client.connect_hb()
                    sock.linger = 0
                await sock.send(b"ping")
                if await sock.poll(interval * 1000, zmq.POLLIN):
                    await sock.recv()
                    last_beat = anyio.current_time()
                    await anyio.sleep(interval)
                    continue
                sock.close()  # a REQ socket without its reply cannot send again
                sock = None
                if anyio.current_time() - last_beat >= timeout:
                    self._gone = f"no heartbeat for {timeout:g} s"
                    scope.cancel()
                    return
        finally:
            if sock is not None:
                sock.close()

    def send(
        self,
        channel: SendChannel,
        msg_type: str,
        content: dict[str, Any],
        *,
        metadata: dict[str, Any] | None = None,
        buffers: list[bytes] | None = None,
        parent: dict[str, Any] | None = None,
    ) -> str:
        """Sign and queue one message without blocking; returns its msg_id."""
        session = self.client.session
        msg = session.msg(msg_type, content, parent=parent, metadata=metadata)
        try:
            frames = [*session.serialize(msg), *(buffers or ())]
        except (TypeError, ValueError) as exc:
            raise KernelError("bad_message", f"cannot serialize {msg_type}: {exc}") from None
        self._queue(channel, frames, msg_type)
        return msg["header"]["msg_id"]

    def send_message(self, channel: SendChannel, msg: dict[str, Any]) -> None:
        """Sign and queue a message someone else built (header, parent_header, metadata,
        content, optional buffers) exactly as it is."""
        session = self.client.session
        try:
            frames = [*session.serialize(msg), *(msg.get("buffers") or ())]
        except (TypeError, ValueError, KeyError) as exc:
            raise KernelError("bad_message", f"cannot serialize the message: {exc}") from None
        self._queue(channel, frames, msg["header"].get("msg_type", "message"))

    def _queue(self, channel: SendChannel, frames: list[Any], msg_type: str) -> None:
        sock = self._sockets.get(channel)
        if sock is None:
            raise KernelError("kernel_restarting", "the kernel is restarting")
        # Through the asyncio socket, never a plain shadow of it: its non-blocking send
        # finishes at once and then wakes the reader awaiting a reply on the same socket.
        # A send behind its back consumes the edge-triggered readiness, and a reply that
        # arrived meanwhile would wait unread for ever (an execute_reply lost that way
        # left a cell running while the daemon sent an Output widget's captures).
        sent = sock.send_multipart(frames, flags=zmq.NOBLOCK)
        error = sent.exception() if sent.done() else None
        if isinstance(error, zmq.Again):
            raise KernelError("kernel_busy", f"the kernel is not reading its {channel} channel")
        if isinstance(error, TypeError):
            raise KernelError("bad_message", f"bad buffers for {msg_type}: {error}")
        if error is not None:
            raise error

    def _close_sockets(self) -> None:
        sockets, self._sockets = self._sockets, {}
        for sock in sockets.values():
            sock.close(linger=0)

    async def aclose(self) -> None:
        self._close_sockets()
