"""What the room asks of a kernel: shell messages, requests awaiting their reply,
executions and comm messages. Mixed into `KernelSession`, which supplies the sending
(`_send`) and the reply routing (`_inbox`).
"""

from __future__ import annotations

from typing import Literal, Protocol

import anyio

from .content import comm_content, execute_content
from .events import KernelError
from .inbox import Inbox
from .transport import SendChannel

Channel = Literal["shell", "control"]


class _Sender(Protocol):
    def __call__(
        self,
        channel: SendChannel,
        msg_type: str,
        content: dict,
        *,
        metadata: dict | None = None,
        buffers: list[bytes] | None = None,
        parent: dict | None = None,
    ) -> str: ...


class KernelRequests:
    """Requests on top of a session's `_send` and `_inbox`."""

    _inbox: Inbox
    _send: _Sender

    def send_shell(
        self,
        msg_type: str,
        content: dict,
        *,
        metadata: dict | None = None,
        buffers: list[bytes] | None = None,
    ) -> str:
        """Queue a shell message; its reply goes to `on_reply`."""
        return self._send("shell", msg_type, content, metadata=metadata, buffers=buffers)

    async def request(
        self,
        msg_type: str,
        content: dict,
        *,
        channel: Channel = "shell",
        timeout: float | None = 30,
    ) -> dict:
        """Send and await the reply whose parent is this message (None: no timeout)."""
        if channel not in ("shell", "control"):
            raise KernelError("bad_message", f"requests go on shell or control, not {channel!r}")
        msg_id = self._send(channel, msg_type, content)
        waiter = self._inbox.expect(msg_id)
        try:
            with anyio.fail_after(timeout):
                return await waiter
        except TimeoutError:
            raise KernelError(
                "kernel_timeout", f"no reply to {msg_type} within {timeout:g} s"
            ) from None
        finally:
            self._inbox.forget(msg_id)

    def execute(
        self,
        code: str,
        *,
        silent: bool = False,
        store_history: bool = True,
        allow_stdin: bool = False,
    ) -> str:
        """Queue an execute_request; outputs arrive on IOPub, the reply on `on_reply`."""
        content = execute_content(
            code, silent=silent, store_history=store_history, allow_stdin=allow_stdin
        )
        return self.send_shell("execute_request", content)

    def send_comm(
        self,
        comm_id: str,
        data: dict,
        *,
        buffers: list[bytes] | None = None,
        msg_type: str = "comm_msg",
        metadata: dict | None = None,
        target_name: str | None = None,
    ) -> str:
        """Send a comm_open / comm_msg / comm_close to the kernel (a client moved a widget)."""
        content = comm_content(msg_type, comm_id, data, target_name)
        return self.send_shell(msg_type, content, metadata=metadata, buffers=buffers)
