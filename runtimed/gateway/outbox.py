"""One front-end connection's queue of kernel messages, which never ends at a wrong value.

Every message is kept and sent in kernel order, with one exception: once more than
`bound` messages wait (the front end reads slower than the kernel writes), a widget
state update (`comm_msg` with method `update` or `echo_update`) merges into the
update of the same comm and method that is still waiting, instead of queueing behind
it. The merged message carries the merged state and buffers (ipywidgets' own merge),
and the newest header, so the front end ends exactly where the kernel is.

A waiting update stays open to merging only while moving later state to its place
cannot be seen: an `echo_update` merges only with echoes of the same session's
changes (a front end waits for the echo of its own last change), any `comm_open` or
`comm_close` closes every waiting update (a later state may name a widget opened
after the earlier one), and a custom message or an update of the other method closes
that comm's. Pure logic: no I/O, no asyncio.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from ..comm_state import BufferPath, CommMessageError, buffer_map, merge_update, parse_comm_update

DEFAULT_BOUND = 512


@dataclass(slots=True)
class Outgoing:
    """One queued message; a merged update owns private copies of its state."""

    channel: str
    msg: dict[str, Any]
    key: tuple[str, str, str] | None = None
    state: dict[str, Any] | None = None
    buffers: dict[BufferPath, bytes] = field(default_factory=dict)


class Outbox:
    """FIFO of `Outgoing`; `push` from the kernel side, `pop` from the writer."""

    def __init__(self, bound: int = DEFAULT_BOUND) -> None:
        self.bound = bound
        self.merged = 0  # updates folded into an earlier one, for logs and benchmarks
        self._queue: deque[Outgoing] = deque()
        self._open: dict[str, Outgoing] = {}  # comm_id -> its waiting, mergeable update

    def __len__(self) -> int:
        return len(self._queue)

    def push(self, channel: str, msg: dict[str, Any]) -> None:
        """Queue a message (or fold a state update into a waiting one, beyond the bound)."""
        if channel == "iopub":
            msg_type = msg["header"].get("msg_type")
            if msg_type in ("comm_open", "comm_close"):
                self._open.clear()
            elif msg_type == "comm_msg":
                if self._merge(msg):
                    return
                item = self._state_update(msg)
                if item is not None:
                    self._queue.append(item)
                    return
        self._queue.append(Outgoing(channel, msg))

    def pop(self) -> Outgoing | None:
        """The next message to send, merged state included; None when empty."""
        if not self._queue:
            return None
        item = self._queue.popleft()
        if item.key is not None and self._open.get(item.key[0]) is item:
            del self._open[item.key[0]]
        if item.state is not None:
            item.msg = _rebuilt(item)
        return item

    def _state_update(self, msg: dict[str, Any]) -> Outgoing | None:
        """A new waiting update that later ones may merge into; None for other comm_msgs."""
        content = msg.get("content") or {}
        comm_id = content.get("comm_id")
        try:
            update = parse_comm_update(content, msg.get("buffers") or [])
        except CommMessageError:
            update = None
        if update is None:
            if isinstance(comm_id, str):
                self._open.pop(comm_id, None)  # a custom message: its comm's order holds
            return None
        item = Outgoing("iopub", msg, key=_key(msg, update.comm_id))
        self._open[update.comm_id] = item
        return item

    def _merge(self, msg: dict[str, Any]) -> bool:
        content = msg.get("content") or {}
        comm_id = content.get("comm_id")
        waiting = self._open.get(comm_id) if isinstance(comm_id, str) else None
        if waiting is None or len(self._queue) <= self.bound:
            return False
        try:
            update = parse_comm_update(content, msg.get("buffers") or [])
        except CommMessageError:
            return False
        if update is None or waiting.key != _key(msg, update.comm_id):
            return False
        if waiting.state is None:  # first merge: copy, the message is shared with others
            first = parse_comm_update(waiting.msg["content"], waiting.msg.get("buffers") or [])
            assert first is not None
            waiting.state = dict(first.state)
            waiting.buffers = buffer_map(first.buffer_paths, first.buffers)
        new_buffers = buffer_map(update.buffer_paths, update.buffers)
        waiting.buffers = merge_update(waiting.state, waiting.buffers, update.state, new_buffers)
        waiting.msg = msg  # the newest header, parent and metadata
        self.merged += 1
        return True


def _key(msg: dict[str, Any], comm_id: str) -> tuple[str, str, str]:
    method = msg["content"]["data"]["method"]
    session = ""
    if method == "echo_update":
        parent = msg.get("parent_header") or {}
        session = str(parent.get("session", ""))
    return (comm_id, method, session)


def _rebuilt(item: Outgoing) -> dict[str, Any]:
    """The merged update as one message: the newest envelope, the merged state."""
    assert item.state is not None
    msg = item.msg
    data = {
        **msg["content"]["data"],
        "state": item.state,
        "buffer_paths": [list(path) for path in item.buffers],
    }
    return {
        **msg,
        "content": {**msg["content"], "data": data},
        "buffers": list(item.buffers.values()),
    }
