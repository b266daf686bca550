"""KernelSession over the KernelTransport seam, with a transport that keeps the kernel
in memory: what any transport (ZMQ today, a Kernel Gateway WebSocket later) gets from
the session and must give it."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from anyio.abc import TaskStatus
from kernel_helpers import Recorder

from runtimed.daemon.tasks import TaskOwner
from runtimed.kernel import KernelError, KernelSession, KernelTransport
from runtimed.kernel.transport import Deliver, SendChannel

OURS = "session-ours"


def message(msg_type: str, content: dict, parent: dict | None = None) -> dict[str, Any]:
    return {
        "header": {"msg_type": msg_type},
        "msg_type": msg_type,
        "parent_header": parent or {},
        "metadata": {},
        "content": content,
        "buffers": [],
    }


class MemoryKernel:
    """Answers kernel_info, publishes what a test asks, and can go silent."""

    session_id = OURS

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, dict]] = []
        self.deliver: Deliver | None = None
        self.closed = False
        self._ids = itertools.count(1)
        self._gone = asyncio.Event()
        self._gone_reason = ""

    async def serve(self, deliver: Deliver, *, task_status: TaskStatus[None]) -> None:
        self.deliver = deliver
        task_status.started()
        await self._gone.wait()
        raise KernelError("kernel_dead", self._gone_reason)

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
        msg_id = f"m{next(self._ids)}"
        self.sent.append((channel, msg_type, content))
        if msg_type == "kernel_info_request":
            header = {"msg_id": msg_id, "session": OURS}
            reply = message("kernel_info_reply", {"implementation": "memory"}, header)
            status = message("status", {"execution_state": "idle"}, header)
            asyncio.get_running_loop().call_soon(self.publish, "shell", reply)
            asyncio.get_running_loop().call_soon(self.publish, "iopub", status)
        return msg_id

    def send_message(self, channel: SendChannel, msg: dict[str, Any]) -> None:
        self.sent.append((channel, msg["header"]["msg_type"], msg["content"]))

    def publish(self, channel: Any, msg: dict[str, Any]) -> None:
        assert self.deliver is not None
        self.deliver(channel, [msg])

    def go_silent(self, reason: str) -> None:
        self._gone_reason = reason
        self._gone.set()

    async def aclose(self) -> None:
        self.closed = True


@pytest.fixture
async def memory_session(tasks: TaskOwner, recorder: Recorder) -> Any:
    kernel = MemoryKernel()
    transport: KernelTransport = kernel  # the test double satisfies the seam's type
    session = await KernelSession.connect(transport, kernel_id="mem", tasks=tasks, **recorder.sinks)
    yield kernel, session
    await session.shutdown()


async def test_a_session_over_any_transport_starts_routes_and_closes(
    memory_session: tuple[MemoryKernel, KernelSession], recorder: Recorder
) -> None:
    kernel, session = memory_session
    assert session.status == "idle"
    assert session.kernel_info == {"implementation": "memory"}
    assert [kind for kind in (e.kind for e in recorder.events)] == ["starting", "started"]

    msg_id = session.execute("1 + 1")
    assert kernel.sent[-1][:2] == ("shell", "execute_request")
    kernel.publish("shell", message("execute_reply", {"status": "ok"}, {"msg_id": msg_id}))
    kernel.publish("iopub", message("stream", {"name": "stdout", "text": "2"}, {"msg_id": msg_id}))
    await recorder.wait_for(lambda: recorder.replies and recorder.messages, "reply and output")
    assert recorder.replies[-1]["content"] == {"status": "ok"}
    assert recorder.messages[-1]["content"]["text"] == "2"

    await session.shutdown()
    assert kernel.closed
    assert recorder.events[-1].kind == "shutdown"


async def test_a_transport_that_loses_its_kernel_fails_waiters_and_reports_died(
    memory_session: tuple[MemoryKernel, KernelSession], recorder: Recorder
) -> None:
    kernel, session = memory_session
    asyncio.get_running_loop().call_soon(kernel.go_silent, "the socket closed")
    with pytest.raises(KernelError) as caught:
        await session.request("comm_info_request", {}, timeout=30)
    assert caught.value.code == "kernel_dead"
    assert session.status == "dead"
    assert recorder.events[-1].kind == "died"
    assert recorder.events[-1].reason == "the socket closed"
    with pytest.raises(KernelError, match="kernel_dead"):
        session.execute("1")


async def test_messages_answering_another_session_go_to_the_relay(
    memory_session: tuple[MemoryKernel, KernelSession], recorder: Recorder
) -> None:
    kernel, session = memory_session
    relayed: list[tuple[str, list[dict]]] = []
    session.relay = lambda channel, batch: relayed.append((channel, batch))
    theirs = {"msg_id": "front-end-1", "session": "session-theirs"}
    session.send_message("shell", message("execute_request", {"code": "x"}, None))
    kernel.publish("shell", message("execute_reply", {"status": "ok"}, theirs))
    kernel.publish("stdin", message("input_request", {"prompt": "?"}, theirs))
    assert [channel for channel, _ in relayed] == ["shell", "stdin"]
    # The room sees the shell reply too (it ends the execution it tracks for the
    # front end), never the input request, which only the front end can answer.
    assert [r["msg_type"] for r in recorder.replies] == ["execute_reply"]
    assert ("stdin", "input_reply") not in {sent[:2] for sent in kernel.sent}
