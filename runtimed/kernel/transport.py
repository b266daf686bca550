"""The seam between a kernel session and the kernel's channels.

A `KernelSession` speaks Jupyter messages; a `KernelTransport` carries them. The ZMQ
transport (`zmq_channels.ZmqChannels`) opens one socket per channel; a Kernel Gateway
transport would carry the same messages over one WebSocket. The session never sees a
socket: it sends on shell, control or stdin, receives decoded batches per channel,
learns from `serve` returning that the kernel stopped answering, and closes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, Protocol

from anyio.abc import TaskStatus

SendChannel = Literal["shell", "control", "stdin"]
ReceiveChannel = Literal["iopub", "shell", "control", "stdin"]
Deliver = Callable[[ReceiveChannel, list[dict[str, Any]]], None]
"""Called with every batch of decoded messages, in arrival order per channel."""


class KernelTransport(Protocol):
    """One kernel's channels, as the session uses them."""

    @property
    def session_id(self) -> str:
        """The Jupyter session our own messages carry: replies to anyone else's are
        relayed, not routed to our requests."""
        ...

    async def serve(self, deliver: Deliver, *, task_status: TaskStatus[None]) -> str:
        """Connect, call `task_status.started()` once sends can reach the kernel, then
        hand every received batch to `deliver` until the kernel stops answering.

        Returns why the kernel is considered gone (for `died`); cancelled to stop.
        A `deliver` that raises is logged, never ends the serving.
        """
        ...

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
        """Queue one message without waiting and return its msg_id.

        KernelError `kernel_busy` when the kernel is not reading that channel,
        `bad_message` when the message cannot be encoded, `kernel_restarting` when
        the transport is not connected.
        """
        ...

    def send_message(self, channel: SendChannel, msg: dict[str, Any]) -> None:
        """Queue a message another client built (its own header and msg_id), unchanged
        but signed, so the kernel's replies name that client's request as parent."""
        ...

    async def aclose(self) -> None:
        """Release the connection; idempotent. `serve` must have been cancelled first."""
        ...
