"""One doc-sync round in flight per peer, so a burst of doc changes folds into few messages.

Without pacing, every flush of a burst (a widget stream: one doc change per 16 ms)
costs every peer a whole sync round: the daemon's message, the peer's answer, the
daemon's look at that answer. With 50 peers that round trip is most of the daemon's
CPU. So a burst's changes are paced (the room says which; any other change goes at
once): a SYNC from the daemon that carries changes is *in flight* until the peer
answers it (an Automerge peer answers a message that moved its heads) or `interval`
seconds pass, and the next one goes at least `peers / room_rate` seconds after it (a
room's peers together get about `room_rate` a second). Meanwhile doc changes only mark
the peer as due; its next message carries all of them. A peer that is busy or far away
gets fewer, larger messages, and nothing is lost: Automerge's sync state knows what the
peer lacks (docs/protocol.md, "Pacing").
"""

from __future__ import annotations

import time
from collections.abc import Callable

from notebook_doc import SyncMessageError, summarize_sync_message


class SyncPacing:
    """When one peer may get its next doc-sync message."""

    def __init__(
        self,
        interval: float,
        room_rate: float = float("inf"),
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.interval = interval
        self.room_rate = room_rate
        self._clock = clock
        self._in_flight: frozenset[bytes] | None = None  # the heads a message in flight named
        self._since = float("-inf")  # when the last message with changes went

    def sent(self, data: bytes) -> None:
        """The daemon sent `data` to the peer: in flight when it carries changes."""
        message = summarize_sync_message(data)
        if message.changes:
            self._in_flight = message.heads
            self._since = self._clock()

    def received(self, data: bytes) -> None:
        """The peer sent `data` (a SYNC Automerge accepted). It answers what is in flight
        when it names every head that message named, or brings changes of its own (an
        edit on top of those heads names only itself), or needs changes (Automerge's
        Bloom filter held one back: the reply must not wait). An answer to an older
        message does not count: counted, each would start a round of its own, and a
        peer that lags would get ever more of them."""
        if self._in_flight is None:
            return
        try:
            message = summarize_sync_message(data)
        except SyncMessageError:  # Automerge took it; what this reader cannot, ends it
            self._in_flight = None
            return
        if message.changes or message.needs or self._in_flight <= message.heads:
            self._in_flight = None

    def reset(self) -> None:
        """Sync starts over (a compaction's switch): nothing is in flight, nothing waits."""
        self._in_flight = None
        self._since = float("-inf")

    def wait(self, peers: int = 1) -> float:
        """Seconds until the next message may go (0: now): its answer or the interval, and
        `peers / room_rate` after the last one with changes (a room's peers together get
        about `room_rate` a second in a burst; after a quiet spell, at once)."""
        now = self._clock()
        if self._in_flight is not None and now - self._since >= self.interval:
            self._in_flight = None
        until = self._since + (self.interval if self._in_flight else peers / self.room_rate)
        return max(0.0, until - now)
