"""The ZMQ transport: one socket per Jupyter channel, one reader task per socket.

Each socket's reader routes whole batches: it takes every message already waiting and
hands them over together, because a widget burst outruns any per-message reader
(docs/lessons.md). IOPub, where the bursts are, is read straight from its socket's file
descriptor, without pyzmq's asyncio futures (see `pump_iopub`). The IOPub SUB never
drops (RCVHWM 0, set on the context before any socket exists). Attached kernels, and
those a remote provisioner launched, are watched by heartbeat; an owned kernel's
process is watched by the session.
"""

from __future__ import annotations

import asyncio
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
IOPUB_BURST_GAP = 0.005  # seconds: in a burst, IOPub is read at most this often
# Wake-ups in a row, each within the gap of the last read, that make a burst: fewer are
# a cell's own few messages (busy, input, output, result, idle), read at once.
IOPUB_BURST_WAKES = 8
RECEIVE_CHANNELS: tuple[ReceiveChannel, ...] = ("iopub", "shell", "control", "stdin")


# pyzmq's backend calls, without the sugar layer's option enums (and without the
# zmq.Again raised at the end of every drain): a fifth of a paced stream's reading cost.
# A part's `more` comes with its Frame, where asking RCVMORE costs an enum each time.
_get = zmq.backend.Socket.get
_recv = zmq.backend.Socket.recv
_EVENTS, _POLLIN, _NOBLOCK = int(zmq.EVENTS), int(zmq.POLLIN), int(zmq.NOBLOCK)


def _take_waiting(sock: zmq.Socket, raw: list[list[bytes]]) -> bool:
    """Append the messages already waiting to `raw`, up to MAX_BATCH; True if more wait.

    POLLIN in ZMQ_EVENTS means a whole message is ready (multipart arrives at once);
    reading EVENTS also re-arms the socket's descriptor, as a read that found nothing."""
    while _get(sock, _EVENTS) & _POLLIN:
        if len(raw) == MAX_BATCH:
            return True
        frame = _recv(sock, _NOBLOCK, copy=False)
        parts = [frame.bytes]
        while frame.more:
            frame = _recv(sock, _NOBLOCK, copy=False)
            parts.append(frame.bytes)
        raw.append(parts)
    return False


def _hand_over(
    raw: list[list[bytes]],
    decoder: MessageDecoder,
    deliver: Callable[[list[dict]], None],
    logger: Any,
) -> None:
    batch = [msg for msg in map(decoder.decode, raw) if msg is not None]
    if batch:
        try:
            deliver(batch)
        except Exception:
            logger.exception("kernel message handler failed", messages=len(batch))


async def pump_messages(
    sock: zmq.asyncio.Socket,
    decoder: MessageDecoder,
    deliver: Callable[[list[dict]], None],
    logger: Any = log,
) -> None:
    """Forever: await one message, take every other one already waiting, deliver the batch.

    One await per batch instead of per message is what lets the reader keep up with a
    kernel's widget burst. A failing `deliver` is logged; the pump goes on. For sockets
    the daemon also sends on (shell, control, stdin): see `ZmqChannels._queue`.
    """
    drain = zmq.Socket.shadow(sock.underlying)
    while True:
        raw = [await sock.recv_multipart()]
        _take_waiting(drain, raw)
        _hand_over(raw, decoder, deliver, logger)


async def pump_iopub(
    sock: zmq.asyncio.Socket,
    decoder: MessageDecoder,
    deliver: Callable[[list[dict]], None],
    logger: Any = log,
    *,
    burst_gap: float = IOPUB_BURST_GAP,
) -> None:
    """`pump_messages` for the IOPub SUB: the loop reads its file descriptor, and in a
    burst at most once per `burst_gap` seconds, until cancelled.

    pyzmq's asyncio recv costs a future, two selector updates and its event dispatch
    per await: in a paced widget stream (each message alone) that was a quarter of the
    daemon's CPU (docs/lessons.md). ZMQ's descriptor says only that something changed;
    looking at ZMQ_EVENTS re-arms it, and it stays quiet until a read has found the
    socket empty. So a wake-up reads until nothing waits, and a batch cut at MAX_BATCH
    goes on at the loop's next turn, since the descriptor will not say again what
    already waits. In a burst (IOPUB_BURST_WAKES wake-ups in a row, each within
    `burst_gap` of the last read), a wake-up only looks at ZMQ_EVENTS and leaves the
    reading to a timer at the gap's end. A kernel that sends 1,000 messages a second
    then costs about 400 wake-ups, not 1,000, while a message after a quiet spell, and
    a cell's few messages, are still read at once. Safe only because nothing sends on
    this socket: a send would consume the signal of a message that arrived meanwhile.
    """
    drain = zmq.Socket.shadow(sock.underlying)
    loop = asyncio.get_running_loop()
    fd = drain.FD
    reading = True
    last_read = float("-inf")
    later: asyncio.TimerHandle | None = None
    quick = 0  # wake-ups in a row that came within `burst_gap` of the last read

    def readable() -> None:
        nonlocal later, quick
        if later is not None:  # something else changed; the timer reads the messages
            _get(drain, _EVENTS)
            return
        quick = quick + 1 if loop.time() - last_read < burst_gap else 0
        if quick < IOPUB_BURST_WAKES:
            read()
        elif _get(drain, _EVENTS) & _POLLIN:  # a burst: read at the gap's end
            later = loop.call_at(last_read + burst_gap, read)

    def read() -> None:
        nonlocal later, last_read
        if later is not None:  # the timer's own call, or a batch's rest got here first
            later.cancel()
            later = None
        if not reading:  # a batch's rest, scheduled before the pump ended
            return
        raw: list[list[bytes]] = []
        if _take_waiting(drain, raw):
            loop.call_soon(read)
        last_read = loop.time()
        _hand_over(raw, decoder, deliver, logger)

    loop.add_reader(fd, readable)
    try:
        read()  # what arrived before the descriptor was watched
        await anyio.sleep_forever()
    finally:
        reading = False
        loop.remove_reader(fd)
        if later is not None:
            later.cancel()


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
                    pump = pump_iopub if channel == "iopub" else pump_messages
                    tg.start_soon(pump, self._sockets[channel], decoder, handler, self._log)
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
