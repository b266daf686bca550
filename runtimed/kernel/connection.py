"""One connection of a kernel session to its kernel: its runner, the handshake, its end.

Each connection's tasks (the transport's readers, the liveness watch) belong to one
anyio task group, held by the connection's runner; the runner runs in the group of the
session's owner (`tasks`: the room's, or a caller's task group), so a restart inside a
request leaves nothing unowned. Readiness comes through `start()`, deadlines are cancel
scopes, and a disconnect cancels the runner's scope and waits for its end. Mixed into
`KernelSession`, which supplies the owner, the inbox and the death report.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import anyio
from anyio.abc import TaskStatus

from .events import KernelError
from .inbox import Inbox
from .process import OwnedKernel
from .runner import Runner, TaskStarter
from .transport import KernelTransport

IOPUB_PROBE = 1.0  # how long a kernel_info round waits for IOPub to show it is subscribed
_CONNECTED = "connected"  # a pending-reply key that no msg_id can take


class KernelConnection:
    """Connecting, running and disconnecting a session's transport."""

    kernel_info: dict | None
    _transport: KernelTransport | None
    _runner: Runner | None
    _tasks: TaskStarter
    _process: OwnedKernel | None
    _inbox: Inbox
    _log: Any
    _report_died: Callable[..., None]
    request: Callable[..., Awaitable[dict]]

    async def _connect(self, transport: KernelTransport, timeout: float) -> None:
        """Run the transport's tasks and wait (within `timeout`) until the kernel answers."""
        self._transport = transport
        self._inbox.session_id = transport.session_id
        self._inbox.iopub_seen.clear()
        # Waited on like a reply, so a kernel that dies meanwhile fails it at once.
        connected = self._inbox.expect(_CONNECTED)
        self._runner = await self._tasks.start(self._run, transport, connected)
        try:
            with anyio.fail_after(timeout):
                await connected
                await self._handshake()
        except TimeoutError:
            raise KernelError(
                "kernel_timeout", f"no kernel_info_reply within {timeout:g} s"
            ) from None
        finally:
            self._inbox.forget(_CONNECTED)

    async def _run(
        self,
        transport: KernelTransport,
        connected: asyncio.Future[dict],
        *,
        task_status: TaskStatus[Runner],
    ) -> None:
        """The owner of one connection's tasks; the first failure means the kernel is dead."""
        runner = Runner()
        with runner.scope:
            try:
                task_status.started(runner)
                async with anyio.create_task_group() as tg:
                    if self._process is not None:
                        tg.start_soon(self._watch_process, self._process)
                    await tg.start(transport.serve, self._inbox.deliver)
                    if not connected.done():
                        connected.set_result({})
            except* KernelError as group:
                error = group.exceptions[0]
                if isinstance(error, KernelError):
                    self._report_died(error.message, error.code)
                else:
                    self._report_died(repr(error))
            except* Exception as group:
                self._log.error("kernel task failed", exc_info=group)
                self._report_died(f"kernel channel failed: {group.exceptions[0]!r}")
            finally:
                runner.ended.set()

    async def _watch_process(self, process: OwnedKernel) -> None:
        self._report_died(await process.exited())

    async def _handshake(self) -> None:
        """kernel_info until both its reply and some IOPub message came back.

        A SUB socket's subscription reaches the kernel some time after connect; only a
        message seen on IOPub proves outputs will not be lost from here on.
        """
        while True:
            reply = await self.request("kernel_info_request", {}, timeout=None)
            self.kernel_info = reply["content"]
            with anyio.move_on_after(IOPUB_PROBE):
                await self._inbox.iopub_seen.wait()
                return

    async def _disconnect(self) -> None:
        """Cancel the connection's tasks, then close the transport."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.stop()
        if self._transport is not None:
            await self._transport.aclose()
