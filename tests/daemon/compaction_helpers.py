"""Clients for compaction tests: one that sees the switch late, one that ignores it."""

from __future__ import annotations

import asyncio
from typing import Any

from runtimed.client import Client
from runtimed.wire import Broadcast


class LateClient(Client):
    """Holds every `compaction` notice (and so everything after it) until `release()`:
    a client whose network is slow, so it keeps editing and syncing against the old
    epoch after the daemon switched."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.gate = asyncio.Event()
        self.held = asyncio.Event()  # a notice is being held
        self.forget = False

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


class NaiveClient(Client):
    """Knows only that a SNAPSHOT may come at any time: merges it, never sends SWITCH."""

    def _on_broadcast(self, event: Broadcast) -> None:
        if event.event != "compaction":
            super()._on_broadcast(event)


def sources(client: Client) -> list[str]:
    return [cell.source for cell in client.doc.get_cells()]


def switched(client: Client, epoch: int) -> bool:
    return any(b.event == "switched" and b.fields["epoch"] == epoch for b in client.broadcasts)
