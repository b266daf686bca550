"""Clients for compaction tests: one that sees the switch late, one that ignores it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from notebook_doc import NotebookDoc, SyncState
from runtimed.client import Client
from runtimed.wire import Broadcast, FrameType, Sync
from runtimed.wire.frames import decode_typed

_PREFIX = 4  # a frame's length prefix on the Unix socket


class LateClient(Client):
    """Holds every `compaction` notice (and so everything after it) until `release()`:
    a client whose network is slow, so it keeps editing and syncing against the old
    epoch after the daemon switched."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = asyncio.Event()
        self.held = asyncio.Event()  # a notice is being held
        self.forget = False
        self.last_sent = b""

    async def _send_locked(self, data: bytes) -> None:
        self.last_sent = data
        await super()._send_locked(data)

    async def push_carrying(self, base: NotebookDoc) -> bool:
        """Push; False, and released, when the SYNC left out an edit made since `base`."""
        await self.push()
        if self.carried_since(base):
            return True
        self.release()
        return False

    def carried_since(self, base: NotebookDoc) -> bool:
        """Whether the last frame sent, a SYNC, carried every edit made since `base`.

        Automerge leaves a change out when the daemon's Bloom filter falsely says it
        has it (about 1 in 100), and sends it only in the next round, after the
        daemon's answer: which a held client reads only once released."""
        frame_type = FrameType(self.last_sent[_PREFIX])
        event = decode_typed(frame_type, self.last_sent[_PREFIX + 1 :])
        if not isinstance(event, Sync):
            return False
        probe = base.fork()
        probe.receive_sync_message(SyncState(), event.data)
        return set(probe.get_heads()) == set(self.doc.get_heads())

    def release(self, *, forget: bool = False) -> None:
        """Go on reading; with `forget`, ignore the held notice and every doc frame after
        it (a client that never answers: nothing is written to a connection the daemon
        may have closed, whose unread bytes a reset would discard)."""
        self.forget = forget
        self.gate.set()

    async def _handle(self, event: Any) -> None:
        if isinstance(event, Broadcast) and event.event == "compaction" and not self.gate.is_set():
            self.held.set()
            await self.gate.wait()
        if self.forget and not isinstance(event, Broadcast):
            return
        await super()._handle(event)


async def in_some_draw(scenario: Callable[[str], Awaitable[bool]], notebook: str) -> None:
    """Run `scenario` on a fresh notebook each time until it counts: it returns False
    for a draw whose held client's late SYNC left a change out (`carried_since`)."""
    for draw in range(10):
        if await scenario(f"{notebook}-{draw}"):
            return
    raise AssertionError("no late SYNC carried all its edits in 10 draws")


class NaiveClient(Client):
    """Knows only that a SNAPSHOT may come at any time: merges it, never sends SWITCH."""

    def _on_broadcast(self, event: Broadcast) -> None:
        if event.event != "compaction":
            super()._on_broadcast(event)


def sources(client: Client) -> list[str]:
    return [cell.source for cell in client.doc.get_cells()]


def switched(client: Client, epoch: int) -> bool:
    return any(b.event == "switched" and b.fields["epoch"] == epoch for b in client.broadcasts)
