"""The Kernel Gateway transport: one kernel's channels over the gateway's kernel WebSocket.

`/api/kernels/{id}/channels` carries every channel in jupyter_server's legacy format
(`ws_codec`): no subprotocol is asked for, as jupyter_server's GatewayClient asks for
none, so Enterprise Gateway and Kernel Gateway of every version speak it. Sends are
queued and written by one task, so `send` never waits. A dropped connection is opened
again with the same session id (jupyter_server replays what it buffered meanwhile) for
up to the target's `reconnect_timeout`; `on_reconnected` then lets the session ask for
a reconcile, since a gap may still have lost messages.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import itertools
import operator
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import anyio
import structlog
from anyio.abc import TaskStatus
from jupyter_client.session import Session
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from . import ws_codec
from .events import KernelError
from .gateway_target import GatewayTarget
from .transport import Deliver, SendChannel

log = structlog.get_logger(__name__)

MAX_BATCH = 1000  # messages handed over at once, so one flood cannot starve the loop
MAX_QUEUED = 100_000  # frames waiting for the socket before a send says kernel_busy
MAX_FRAME = 256 * 1024 * 1024  # a kernel message with its buffers, from a trusted gateway
RETRY_DELAYS = (0.1, 0.25, 0.5, 1.0, 2.0)  # between reconnect attempts, the last repeated


class GatewayTransport:
    """A `KernelTransport` over one gateway kernel's WebSocket."""

    def __init__(
        self,
        target: GatewayTarget,
        kernel_id: str,
        session: Session,
        *,
        on_reconnected: Callable[[float], None] | None = None,
        logger: Any = log,
    ) -> None:
        self.target = target
        self.kernel_id = kernel_id
        self._session = session
        self._on_reconnected = on_reconnected
        self._log = logger.bind(gateway=target.url, gateway_kernel=kernel_id)
        self._outgoing: collections.deque[str | bytes] = collections.deque()
        self._queued = anyio.Event()
        self._serving = False
        self._ws: ClientConnection | None = None

    @property
    def session_id(self) -> str:
        return self._session.session

    # ------------------------------------------------------------------ serving

    async def serve(
        self, deliver: Deliver, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Relay until cancelled; raises KernelError when the kernel or gateway is gone."""
        ws = await self._connect()
        self._serving = True
        task_status.started()
        try:
            while True:
                await self._pump(ws, deliver)
                dropped_at = anyio.current_time()
                self._log.warning("gateway_ws_dropped", code=ws.close_code, queued=len(self))
                ws = await self._reconnect()
                gap = anyio.current_time() - dropped_at
                self._log.info("gateway_ws_reconnected", seconds=round(gap, 3))
                if self._on_reconnected is not None:
                    self._on_reconnected(gap)
        finally:
            self._serving = False
            await self._close()

    def __len__(self) -> int:
        return len(self._outgoing)

    async def _connect(self) -> ClientConnection:
        """One handshake; KernelError with the code that says why it failed."""
        path = f"/api/kernels/{quote(self.kernel_id, safe='')}/channels"
        url = self.target.ws_url(f"{path}?session_id={quote(self.session_id)}")
        try:
            self._ws = await connect(
                url,
                additional_headers=self.target.headers,
                open_timeout=self.target.timeout,
                max_size=MAX_FRAME,
                max_queue=1024,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status == 404:
                raise KernelError(
                    "kernel_dead", f"the gateway no longer has kernel {self.kernel_id}"
                ) from None
            raise KernelError(
                "gateway_error", f"the gateway refused the kernel WebSocket: HTTP {status}"
            ) from None
        except TimeoutError:
            raise KernelError(
                "gateway_timeout",
                f"no kernel WebSocket from {self.target.url} within {self.target.timeout:g} s",
            ) from None
        except (OSError, InvalidHandshake) as exc:
            raise KernelError(
                "gateway_unreachable", f"cannot reach the gateway at {self.target.url}: {exc}"
            ) from None
        return self._ws

    async def _reconnect(self) -> ClientConnection:
        """Try again until the reconnect window closes; a 404 or a refusal ends it at once."""
        deadline = anyio.current_time() + self.target.reconnect_timeout
        attempt = 0
        while True:
            try:
                return await self._connect()
            except KernelError as exc:
                if exc.code in ("kernel_dead", "gateway_error"):
                    raise
                if anyio.current_time() >= deadline:
                    raise KernelError(
                        "gateway_unreachable",
                        f"kernel WebSocket lost and not regained within "
                        f"{self.target.reconnect_timeout:g} s ({exc.message})",
                    ) from None
                self._log.info("gateway_ws_retry", attempt=attempt, reason=exc.message)
            await anyio.sleep(RETRY_DELAYS[min(attempt, len(RETRY_DELAYS) - 1)])
            attempt += 1

    async def _pump(self, ws: ClientConnection, deliver: Deliver) -> None:
        """Read and write on one connection until it closes; KernelError when the
        gateway said the kernel is gone."""
        gone: list[KernelError] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(self._write, ws)
            try:
                await self._read(ws, deliver)
            except KernelError as exc:  # raised out here, not as an exception group
                gone.append(exc)
            finally:
                tg.cancel_scope.cancel()
        if gone:
            raise gone[0]

    async def _read(self, ws: ClientConnection, deliver: Deliver) -> None:
        """Decode every frame; hand them over in batches (see `_Batch`)."""
        batch = _Batch(deliver, self._log)
        try:
            async for frame in ws:
                try:
                    channel, msg = ws_codec.decode(frame, ws_codec.ALL_CHANNELS)
                except ws_codec.CodecError as exc:
                    self._log.warning("gateway_bad_frame", reason=str(exc))
                    continue
                header = msg["header"]
                msg["msg_id"], msg["msg_type"] = header["msg_id"], header["msg_type"]
                _check_alive(channel, msg)
                batch.add(channel, msg)
        except ConnectionClosed:
            pass
        finally:
            batch.flush()

    async def _write(self, ws: ClientConnection) -> None:
        """Send queued frames in order; one not sent stays queued for the next connection."""
        with contextlib.suppress(ConnectionClosed):  # the reader sees the close too
            while True:
                while self._outgoing:
                    await ws.send(self._outgoing[0])
                    self._outgoing.popleft()
                self._queued = anyio.Event()
                await self._queued.wait()

    async def _close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(2):
                await ws.close()

    # ------------------------------------------------------------------ sending

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
        """Queue one message without waiting; returns its msg_id."""
        msg = self._session.msg(msg_type, content, parent=parent, metadata=metadata)
        msg["buffers"] = buffers or []
        self.send_message(channel, msg)
        return msg["header"]["msg_id"]

    def send_message(self, channel: SendChannel, msg: dict[str, Any]) -> None:
        """Queue a message someone else built, as it is (the gateway signs it)."""
        if not self._serving:
            raise KernelError("kernel_restarting", "the kernel is restarting")
        if len(self._outgoing) >= MAX_QUEUED:
            raise KernelError("kernel_busy", "the gateway is not taking the kernel's messages")
        try:
            frame = ws_codec.encode(msg, channel)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise KernelError("bad_message", f"cannot encode the message: {exc}") from None
        self._outgoing.append(frame)
        self._queued.set()

    async def aclose(self) -> None:
        self._serving = False
        await self._close()


class _Batch:
    """Messages read since the loop last ran, delivered together (per channel run).

    Receiving a frame the WebSocket already holds does not suspend the reader, so one
    flush scheduled with `call_soon` sees every message that came in one go, as the ZMQ
    transport's drain does: a widget burst costs one delivery per batch, not per message.
    """

    def __init__(self, deliver: Deliver, logger: Any) -> None:
        self._deliver = deliver
        self._log = logger
        self._pending: list[tuple[str, dict[str, Any]]] = []
        self._scheduled = False

    def add(self, channel: str, msg: dict[str, Any]) -> None:
        self._pending.append((channel, msg))
        if len(self._pending) >= MAX_BATCH:
            self.flush()
        elif not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self.flush)

    def flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        for channel, run in itertools.groupby(pending, key=operator.itemgetter(0)):
            try:
                self._deliver(channel, [msg for _, msg in run])  # type: ignore[arg-type]
            except Exception:
                self._log.exception("kernel message handler failed")


def _check_alive(channel: str, msg: dict[str, Any]) -> None:
    """jupyter_server's own word on the kernel: `dead` (its restarts failed) or
    `restarting` (it died and the gateway starts a fresh process, without our widgets)
    as a status with no parent. Either way this kernel, as the room knew it, is gone."""
    if channel != "iopub" or msg["msg_type"] != "status" or msg["parent_header"]:
        return
    state = msg["content"].get("execution_state")
    if state == "dead":
        raise KernelError("kernel_dead", "the gateway reports the kernel dead")
    if state == "restarting":
        raise KernelError(
            "kernel_dead", "the gateway reports the kernel died (it starts a fresh process)"
        )
