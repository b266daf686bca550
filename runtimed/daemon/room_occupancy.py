"""Who is in a room: peers joining and leaving, and the close of a room nobody uses.

A joiner is welcomed in the spec's order (docs/protocol.md, "Joining a notebook room"),
after the room flushed the writes it holds back, so its first view holds everything
received (`welcome`). The number of peers sets how often a burst may change the doc
(`burst_window`). A room nobody uses (no peer, no running kernel, no Kernel Gateway
kernel) closes after `room_grace` seconds, at once when its doc is one the room made up
and nobody touched (`close_delay`); the registry's `on_idle` closes it. Every doc write
stays the room's: a join only asks the room's coalescer for its flush.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from ..config import Settings
from ..wire import Broadcast, Event, Presence, Snapshot, Sync

if TYPE_CHECKING:
    from .peer import Peer
    from .room import NotebookRoom


class Occupancy:
    """A room's peers, and the timer that closes the room once nobody uses it."""

    def __init__(self, room: NotebookRoom) -> None:
        self.room = room
        self.peers: dict[str, Peer] = {}
        self.keep_open = False  # a Kernel Gateway kernel lives here, dead or alive
        self.on_idle: Callable[[NotebookRoom], None] | None = None
        self._close_timer: asyncio.TimerHandle | None = None

    def join(self, peer: Peer, *, snapshot: bool) -> None:
        """Welcome `peer`; `snapshot`: it asked for the SNAPSHOT first."""
        room = self.room
        self.cancel_close()
        self.peers[peer.id] = peer
        room.broadcasts.attach(peer)
        self._fit_burst_window()
        peer.log = peer.log.bind(room_id=room.room_id)
        peer.sync_source = lambda state: room.doc.generate_sync_message(state)  # any epoch
        peer.comm_sync_source = room.comms.sync_event
        peer.snapshot_source = room.snapshot
        room.coalescer.flush_now()  # the peer's first view includes everything received
        for message in welcome(room, peer, snapshot=snapshot):
            peer.send(message)
        room.log.info("peer_joined", peer_id=peer.id, peers=len(self.peers), name=peer.name)
        room.trims.ask()  # what building the welcome took (the comm_sync of every widget)

    def leave(self, peer: Peer) -> None:
        if self.peers.pop(peer.id, None) is None:
            return
        room = self.room
        room.broadcasts.detach(peer)
        self._fit_burst_window()
        room.compactor.peer_left(peer)
        room.log.info("peer_left", peer_id=peer.id, peers=len(self.peers))
        room.trims.ask()  # what the peer held (its sync state, the frames it did not read)
        self.maybe_close()

    def _fit_burst_window(self) -> None:
        room = self.room
        room.coalescer.burst_window = burst_window(len(self.peers), room.settings)

    def relay_presence(self, peer: Peer, payload: dict) -> None:
        event = Presence({**payload, "peer_id": peer.id})
        for other in self.peers.values():
            if other is not peer:
                other.send(event)

    def release(self) -> None:
        """Nothing but peers keeps the room open any more: it closes once idle."""
        self.keep_open = False
        self.maybe_close()

    def maybe_close(self) -> None:
        """Start the close timer if nothing uses the room any more."""
        if self.keep_open or self._close_timer is not None:
            return
        delay = close_delay(self.room)
        if delay is not None:
            self._close_timer = asyncio.get_running_loop().call_later(delay, self._idle)

    def cancel_close(self) -> None:
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None

    def _idle(self) -> None:
        self._close_timer = None
        if not self.peers and self.on_idle is not None:
            self.on_idle(self.room)


def welcome(room: NotebookRoom, peer: Peer, *, snapshot: bool) -> list[Event]:
    """What a joiner gets first, in the spec's order: SNAPSHOT (if asked), SYNC,
    comm_sync (if any comm), trust, kernel_status, save_state (with a .ipynb)."""
    messages: list[Event] = [Snapshot(room.snapshot())] if snapshot else []
    first = room.doc.generate_sync_message(peer.sync_state)
    if first is not None:
        messages.append(Sync(first))
    if len(room.comms):
        messages.append(room.comms.sync_event())
    messages.append(Broadcast("trust", room.trust.state))
    messages.append(Broadcast("kernel_status", room.kernel_binding.status_fields()))
    if room.saver is not None:
        messages.append(Broadcast("save_state", room.saver.event()))
    return messages


def burst_window(peers: int, settings: Settings) -> float:
    """A burst's doc changes at most 4 times per pacing spacing (peers / room_sync_rate,
    the least time between two of a peer's burst SYNCs), never more often than the
    coalescing window: 16 ms up to 6 peers, 125 ms with 50."""
    spacing = peers / settings.room_sync_rate
    return max(settings.coalesce_window, spacing / 4)


def close_delay(room: NotebookRoom) -> float | None:
    """Seconds until an unused room closes: 0 for a doc it made up that nobody touched
    (nothing to wait for), else `room_grace`; None while a peer or a running kernel
    (its outputs still need a home) uses it, or once it is closed."""
    if room.peers or room.closed:
        return None
    if room.kernel is not None and room.kernel_status not in ("dead", "shutdown"):
        return None
    untouched = room.doc.get_heads() == room.fresh_heads
    return 0 if untouched else room.settings.room_grace
