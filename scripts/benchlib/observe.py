"""What a client sees, and when: comm values by broadcast and by doc, finished executions.

One `Observer` per client subscribes once, and a background task polls it after every
incoming frame (through `Client.wait_for`), so each arrival is stamped when the
client's own loop handles it, as an application on that client would see it, whoever
happens to be waiting at the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

from runtimed.client import Client


class KernelCodeFailed(RuntimeError):
    """Bench code raised in the kernel: the figures of that case mean nothing."""


class ValueWatch:
    """When each value of one comm's state key first reached the client."""

    def __init__(self, comm_id: str, key: str) -> None:
        self.comm_id = comm_id
        self.key = key
        self.broadcast_at: dict[Any, float] = {}
        self.doc_at: dict[Any, float] = {}
        self.broadcasts = 0
        self.doc_value: Any = None
        self._doc_json: str | None = None

    def on_broadcast(self, content: dict[str, Any], now: float) -> None:
        data = content.get("data") or {}
        value = (data.get("state") or {}).get(self.key)
        if value is not None and data.get("method") in ("update", "echo_update"):
            self.broadcasts += 1
            self.broadcast_at.setdefault(value, now)

    def check_doc(self, client: Client, now: float) -> None:
        raw = client.doc.get_comm_state_json(self.comm_id)
        if raw is None or raw == self._doc_json:
            return
        self._doc_json = raw
        self.doc_value = json.loads(raw).get(self.key)
        self.doc_at.setdefault(self.doc_value, now)

    def doc_latencies_ms(self, sent: dict[Any, float]) -> list[float]:
        """Per sent value: until the doc first showed it or a later value (coalescing skips)."""
        seen = sorted(self.doc_at.items())
        # earliest[i]: the first time the doc showed seen[i]'s value or any later one.
        earliest = [at for _, at in seen]
        for i in range(len(earliest) - 2, -1, -1):
            earliest[i] = min(earliest[i], earliest[i + 1])
        latencies = []
        index = 0
        for value, sent_at in sorted(sent.items()):
            while index < len(seen) and seen[index][0] < value:
                index += 1
            if index == len(seen):
                break
            latencies.append((earliest[index] - sent_at) * 1000)
        return latencies

    def broadcast_latencies_ms(self, sent: dict[Any, float]) -> list[float]:
        return [
            (self.broadcast_at[v] - t) * 1000 for v, t in sent.items() if v in self.broadcast_at
        ]


class Observer:
    """Dispatches one client's broadcasts to value watches and finished-execution records."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._queue = client.subscribe()
        self.finished: dict[str, dict[str, Any]] = {}
        self.watches: dict[str, ValueWatch] = {}
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Observer:
        def check(_client: Client) -> bool:
            self.poll()
            return False

        forever = self.client.wait_for(check, timeout=float("inf"))
        self._task = asyncio.get_running_loop().create_task(forever)
        return self

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    def watch(self, comm_id: str, key: str = "value") -> ValueWatch:
        self.watches[comm_id] = ValueWatch(comm_id, key)
        return self.watches[comm_id]

    def poll(self) -> None:
        now = time.time()
        while not self._queue.empty():
            event = self._queue.get_nowait()
            if event.event == "execution_done":
                self.finished[event.fields.get("msg_id")] = event.fields
            elif event.event == "comm" and event.fields.get("msg_type") == "comm_msg":
                content = event.fields.get("content") or {}
                watch = self.watches.get(content.get("comm_id"))
                if watch is not None:
                    watch.on_broadcast(content, now)
        for watch in self.watches.values():
            watch.check_doc(self.client, now)

    async def until(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        def check(_client: Client) -> bool:
            self.poll()
            return condition()

        await self.client.wait_for(check, timeout, what)

    async def start_cell(self, code: str) -> tuple[str, str]:
        """Put `code` in a new cell and run it; returns (cell_id, msg_id) at once."""
        cell_id = self.client.doc.add_cell(source=code)
        await self.client.wait_synced()
        reply = await self.client.request("execute_cell", cell_id=cell_id)
        return cell_id, reply["msg_id"]

    async def finish_cell(self, cell_id: str, msg_id: str, timeout: float = 300) -> str:
        """Wait for the cell to finish; its stdout, or KernelCodeFailed with the traceback."""
        await self.until(lambda: msg_id in self.finished, timeout, f"cell {cell_id} finished")
        await self.client.wait_synced()
        text = []
        for raw in self.client.doc.get_outputs(cell_id):
            output = json.loads(raw) if raw.startswith("{") else {}
            if output.get("output_type") == "error":
                raise KernelCodeFailed("\n".join(output.get("traceback", [])))
            if output.get("output_type") == "stream":
                text.append(output.get("text", ""))
        return "".join(text)

    async def run_cell(self, code: str, timeout: float = 300) -> str:
        cell_id, msg_id = await self.start_cell(code)
        return await self.finish_cell(cell_id, msg_id, timeout)


async def wait_true(
    check: Callable[[], bool], timeout: float, what: str, *, interval: float = 0.02
) -> None:
    """Poll a condition nothing announces (a file on disk, a process figure)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(interval)
