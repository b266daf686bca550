"""Shared by the kernel tests: a recorder of what a KernelSession hands out, and a
minimal kernel whose IOPub the test controls byte for byte."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zmq
from jupyter_client.connect import write_connection_file
from jupyter_client.session import Session

from runtimed.kernel import KernelEvent

STOP = [b"stop"]


class Recorder:
    """Everything a KernelSession hands out, and a way to wait for a condition on it."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.batches = 0
        self.events: list[KernelEvent] = []
        self.replies: list[dict] = []
        self._changed = asyncio.Event()

    def on_iopub(self, batch: list[dict]) -> None:
        self.messages.extend(batch)
        self.batches += 1
        self._changed.set()

    def on_event(self, event: KernelEvent) -> None:
        self.events.append(event)
        self._changed.set()

    def on_reply(self, msg: dict) -> None:
        self.replies.append(msg)
        self._changed.set()

    @property
    def sinks(self) -> dict[str, Any]:
        return {"on_iopub": self.on_iopub, "on_event": self.on_event, "on_reply": self.on_reply}

    async def wait_for(self, predicate: Callable[[], Any], what: str, within: float = 30) -> Any:
        """Wake on every delivery and re-check; fail with `what` at the deadline."""
        try:
            async with asyncio.timeout(within):
                while not (result := predicate()):
                    self._changed.clear()
                    await self._changed.wait()
        except TimeoutError:
            pytest.fail(f"timed out after {within} s waiting for {what}")
        return result

    def children_of(self, msg_id: str) -> list[dict]:
        return [m for m in self.messages if m["parent_header"].get("msg_id") == msg_id]

    async def until_idle(self, msg_id: str) -> list[dict]:
        """Every IOPub message of one request, once its `idle` status arrived."""

        def done() -> bool:
            return any(
                m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
                for m in self.children_of(msg_id)
            )

        await self.wait_for(done, f"idle after {msg_id}")
        return self.children_of(msg_id)

    async def stdout_of(self, msg_id: str) -> str:
        messages = await self.until_idle(msg_id)
        return "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")

    async def event(self, kind: str, within: float = 30) -> KernelEvent:
        def found() -> KernelEvent | None:
            return next((e for e in self.events if e.kind == kind), None)

        return await self.wait_for(found, f"a {kind!r} event", within)

    def reply_to(self, msg_id: str) -> dict | None:
        return next((r for r in self.replies if r["parent_header"].get("msg_id") == msg_id), None)


class ScriptedKernel(threading.Thread):
    """Just enough of a Jupyter kernel to be attached to, in a thread of the test process.

    It answers kernel_info on shell and control (and says `idle` on IOPub after each,
    as ipykernel does), echoes heartbeats, and publishes on IOPub exactly the frames
    the test hands to `publish_frames`. Its PUB socket keeps the default send
    high-water mark of 1000, like a real kernel's: a subscriber that cannot absorb a
    burst loses messages here.
    """

    def __init__(self, directory: Path) -> None:
        super().__init__(name="scripted-kernel", daemon=True)
        self.session = Session(key=b"scripted-secret")
        self._context = zmq.Context()
        url = "tcp://127.0.0.1"
        self._shell = self._context.socket(zmq.ROUTER)
        self._control = self._context.socket(zmq.ROUTER)
        self._stdin = self._context.socket(zmq.ROUTER)
        self._hb = self._context.socket(zmq.REP)
        self._iopub = self._context.socket(zmq.PUB)
        ports = {
            f"{name}_port": sock.bind_to_random_port(url)
            for name, sock in [
                ("shell", self._shell),
                ("control", self._control),
                ("stdin", self._stdin),
                ("hb", self._hb),
                ("iopub", self._iopub),
            ]
        }
        self._inbox = self._context.socket(zmq.PULL)
        self._inbox.bind("inproc://scripted-outbox")
        self._outbox = self._context.socket(zmq.PUSH)  # used by the test's thread only
        self._outbox.connect("inproc://scripted-outbox")
        self.connection_file, _ = write_connection_file(
            str(directory / "kernel-scripted.json"),
            ip="127.0.0.1",
            key=self.session.key,
            **ports,
        )

    def publish(self, msg_type: str, content: dict, parent: dict | None = None) -> dict:
        """Sign and publish one IOPub message; returns it."""
        msg = self.session.msg(msg_type, content, parent=parent)
        self.publish_frames(self.session.serialize(msg))
        return msg

    def publish_frames(self, frames: list[bytes]) -> None:
        self._outbox.send_multipart(frames)

    def stop(self) -> None:
        self._outbox.send_multipart(STOP)
        self.join(10)
        self._outbox.close(linger=0)
        self._context.term()

    def run(self) -> None:
        poller = zmq.Poller()
        for sock in (self._shell, self._control, self._hb, self._inbox):
            poller.register(sock, zmq.POLLIN)
        try:
            while True:
                for sock, _ in poller.poll():
                    if sock is self._hb:
                        self._hb.send(self._hb.recv())
                    elif sock is self._inbox:
                        frames = self._inbox.recv_multipart()
                        if frames == STOP:
                            return
                        self._iopub.send_multipart(frames)
                    else:
                        self._answer(sock)
        finally:
            for sock in (self._shell, self._control, self._stdin, self._hb, self._iopub):
                sock.close(linger=0)
            self._inbox.close(linger=0)

    def _answer(self, sock: zmq.Socket) -> None:
        identities, frames = self.session.feed_identities(sock.recv_multipart())
        request = self.session.deserialize(frames)
        if request["msg_type"] != "kernel_info_request":
            return
        info = {"status": "ok", "protocol_version": "5.3", "implementation": "scripted"}
        self.session.send(sock, "kernel_info_reply", info, parent=request, ident=identities)
        status = self.session.msg("status", {"execution_state": "idle"}, parent=request)
        self._iopub.send_multipart(self.session.serialize(status))
