"""Where a kernel session's received messages go.

Replies are routed by `parent_header.msg_id` to the request awaiting them, so no
caller ever consumes another's replies; the rest go to the room (`on_iopub`,
`on_reply`), or, when they answer another Jupyter session's request (a front end
relayed through the Kernel Gateway API), to the relay.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import Any

import structlog

from .decode import parent_id
from .events import KernelError
from .transport import ReceiveChannel

log = structlog.get_logger(__name__)

IopubSink = Callable[[list[dict]], None]
ReplySink = Callable[[dict], None]
RelaySink = Callable[[str, list[dict]], None]
"""`(channel, messages)`: IOPub batches, the shell/control/stdin messages whose parent
came from another session (a front end relayed through `send_message`), and lifecycle
events as `("event", [{"kind", "reason"}])`."""


class Inbox:
    """Routes every received batch; a failing sink is logged, never fatal."""

    def __init__(
        self,
        *,
        on_iopub: IopubSink,
        on_reply: ReplySink | None,
        on_input_request: Callable[[dict], None],
        logger: Any = log,
    ) -> None:
        self.relay: RelaySink | None = None
        self.session_id: str | None = None  # our own messages' Jupyter session
        self.iopub_seen = asyncio.Event()
        self._on_iopub = on_iopub
        self._on_reply = on_reply
        self._on_input_request = on_input_request
        self._pending: dict[str, asyncio.Future[dict]] = {}
        self._log = logger

    # ------------------------------------------------------------------ waiters

    def expect(self, key: str) -> asyncio.Future[dict]:
        """A future for the reply whose parent is `key` (or a made-up key resolved by
        hand); failed by `fail_all`, so a dying kernel fails every waiter at once."""
        waiter: asyncio.Future[dict] = asyncio.get_running_loop().create_future()
        self._pending[key] = waiter
        return waiter

    def forget(self, key: str) -> None:
        self._pending.pop(key, None)

    def fail_all(self, error: KernelError) -> None:
        pending, self._pending = self._pending, {}
        for waiter in pending.values():
            if not waiter.done():
                waiter.set_exception(error)

    # ------------------------------------------------------------------ routing

    def deliver(self, channel: ReceiveChannel, batch: list[dict]) -> None:
        if channel == "iopub":
            self._iopub(batch)
            return
        for msg in batch:
            waiter = None if channel == "stdin" else self._pending.pop(parent_id(msg), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(msg)
            elif self._relayed(msg):
                if channel == "shell" and self._on_reply is not None:
                    self.call(self._on_reply, msg)  # the room tracks relayed executions too
                self.call(functools.partial(self.relay, channel), [msg])  # type: ignore[arg-type]
            elif channel == "stdin":
                if msg["msg_type"] == "input_request":
                    self.call(self._on_input_request, msg)
            elif self._on_reply is not None:
                self.call(self._on_reply, msg)
            else:
                self._log.debug("unclaimed reply dropped", msg_type=msg["msg_type"])

    def _iopub(self, batch: list[dict]) -> None:
        self.iopub_seen.set()
        self.call(self._on_iopub, batch)
        if self.relay is not None:  # after the room: its stores already hold the batch
            self.call(functools.partial(self.relay, "iopub"), batch)

    def _relayed(self, msg: dict) -> bool:
        """A message answering another session's request: the relay's, not ours."""
        if self.relay is None or self.session_id is None:
            return False
        return msg["parent_header"].get("session") not in (None, self.session_id)

    def relay_event(self, kind: str, reason: str) -> None:
        if self.relay is not None:
            self.call(functools.partial(self.relay, "event"), [{"kind": kind, "reason": reason}])

    def call(self, callback: Callable[[Any], None], arg: Any) -> None:
        try:
            callback(arg)
        except Exception:
            self._log.exception("kernel session callback failed", callback=repr(callback))
