"""A room's broadcasts, framed once and read by every peer's writer from one shared log.

A broadcast costs the room the same whatever the number of peers: it is encoded once
per framing and appended here; each peer keeps only a cursor into the log (and its own
queue for frames meant for it alone, see peer.py). Peers that wait for work are written
in one callback per batch, not once per frame, and in a burst at most once per
`peers / write_rate` seconds: the first broadcast after a pause goes at the loop's next
turn, later ones join the next wake, so a kernel's rate does not set the number of
socket writes. An entry stays until every attached peer has read past it. A peer whose
unread part grows past its queue limit loses its comm broadcasts for one `comm_sync`
(`Peer.overflow`), so one slow reader bounds the log, not the room.

The frames of a framing lie back to back in one buffer (`FrameBuffer`), not one bytes
object each: readers lag during a burst, and 100,000 small frames held at once, freed
once read, left 20 MB of the heap's small-object arenas in pieces it could not return.
"""

from __future__ import annotations

import asyncio
import time
from array import array
from typing import TYPE_CHECKING

from ..wire import Broadcast, Framing

if TYPE_CHECKING:
    from .peer import Peer

TRIM_EVERY = 1024  # entries appended between two looks at what every peer has read
LARGE = 64 * 1024  # a frame this size or more is kept as its own object (FrameBuffer)


class FrameBuffer:
    """One framing's frames, one per log entry: small ones back to back in a single
    buffer, a large one (LARGE bytes or more) as its own object. Copying a 5 MB widget
    state into the buffer and out again per peer stalled the loop 20 ms more; a large
    frame comes from its own mapping anyway, which the heap gives back whole."""

    __slots__ = ("_data", "_dropped", "_ends", "_head", "_large")

    def __init__(self) -> None:
        self._data = bytearray()
        self._ends = array("q")  # per entry: where its bytes in `_data` end, from the first
        self._head = 0  # where `_data` starts, counted the same way
        self._dropped = 0  # entries dropped so far: an entry's number less this is its index
        self._large: dict[int, bytes] = {}  # entry number -> a large frame (not in `_data`)

    def append(self, frame: bytes) -> None:
        if len(frame) >= LARGE:
            self._large[self._dropped + len(self._ends)] = frame
        else:
            self._data += frame
        self._ends.append(self._head + len(self._data))

    def __len__(self) -> int:
        return len(self._ends)

    def __getitem__(self, entries: slice) -> list[bytes]:
        """The frames of a range of entries, one bytes object each."""
        first, last, _ = entries.indices(len(self._ends))
        frames = []
        start = (self._ends[first - 1] if first else self._head) - self._head
        with memoryview(self._data) as view:
            for index in range(first, last):
                end = self._ends[index] - self._head
                large = self._large.get(self._dropped + index) if self._large else None
                frames.append(large if large is not None else bytes(view[start:end]))
                start = end
        return frames

    def join(self, first: int, last: int) -> bytes:
        """The frames of entries `first` to `last` (excluded) as one bytes object."""
        if last <= first:
            return b""
        if self._large:
            return b"".join(self[first:last])
        start = (self._ends[first - 1] if first else self._head) - self._head
        with memoryview(self._data) as view:
            return bytes(view[start : self._ends[last - 1] - self._head])

    def drop(self, count: int) -> None:
        """Forget the first `count` entries (the buffer shrinks once mostly unused)."""
        if count <= 0:
            return
        head = self._ends[count - 1]
        del self._data[: head - self._head]
        del self._ends[:count]
        self._head = head
        self._dropped += count
        for number in [n for n in self._large if n < self._dropped]:
            del self._large[number]


class BroadcastLog:
    """Shared frames of one room's broadcasts, each peer reading from its own cursor."""

    def __init__(self, write_rate: float = float("inf")) -> None:
        self.write_rate = write_rate
        self.base = 0  # the position of the oldest entry still kept
        self.end = 0  # the position the next broadcast gets
        self.last_ordered = -1  # the position of the last broadcast that is not a comm event
        self.comm: list[bool] = []  # per entry: a comm event that a comm_sync may replace
        self.frames: dict[Framing, FrameBuffer] = {framing: FrameBuffer() for framing in Framing}
        self._offsets = array("q")  # per entry: the bytes appended before it
        self._total = 0
        self._peers: set[Peer] = set()
        self._encoders: dict[Framing, Peer] = {}  # an attached peer of each framing in use
        # Per framing, its frames and the peer that encodes them (None: not in use).
        self._slots: list[tuple[FrameBuffer, Peer | None]] = []
        self._fit_slots()
        self._sleeping: set[Peer] = set()
        self._last_wake = float("-inf")
        self._wake_timer: asyncio.Handle | None = None
        self._limit = 0  # the smallest queue limit of the attached peers
        self._oldest = 0  # no attached peer's cursor is below this
        self._next_trim = TRIM_EVERY
        self._joined: tuple[int, int, bytes] = (0, 0, b"")  # (start, end, the frames joined)

    # --- peers ---------------------------------------------------------------------

    def attach(self, peer: Peer) -> None:
        """`peer` reads every broadcast appended from now on, after what it has queued."""
        peer.broadcast_log, peer.cursor = self, self.end
        self._peers.add(peer)
        self._encoders.setdefault(peer.conn.framing, peer)
        self._fit_slots()
        self._limit = min(p.queue_limit for p in self._peers)

    def detach(self, peer: Peer) -> None:
        """`peer` reads no more (closed, or left the room); idempotent."""
        if peer not in self._peers:
            return
        self._peers.discard(peer)
        framing = peer.conn.framing
        if self._encoders.get(framing) is peer:
            del self._encoders[framing]
            for other in self._peers:
                if other.conn.framing is framing:
                    self._encoders[framing] = other
                    break
            self._fit_slots()
        self._sleeping.discard(peer)
        self._limit = min((p.queue_limit for p in self._peers), default=0)
        peer.broadcast_log = None

    def _fit_slots(self) -> None:
        self._slots = [(self.frames[f], self._encoders.get(f)) for f in Framing]

    @property
    def readers(self) -> int:
        """The attached peers (what pacing divides a room's rates by)."""
        return len(self._peers)

    def will_write(self, peer: Peer) -> bool:
        """Whether `peer` is written by a wake already due (its pending SYNC can go
        along: in a burst, one socket write instead of two)."""
        return self._wake_timer is not None and peer in self._sleeping

    def sleep(self, peer: Peer) -> None:
        """`peer` has written all it had: write it with the next broadcast (or now, if it
        is behind and no paced wake is due: then that wake takes it along).

        Once every attached peer waits with nothing unread (no paced wake is due), every
        entry has been read and the log is emptied: the trim in `append` runs only while
        broadcasts come, so the tail of a burst (100,000 widget updates: 26 MB of frames)
        would otherwise stay for ever."""
        if peer.cursor < self.end and self._wake_timer is None:
            peer.wake()
            return
        self._sleeping.add(peer)
        waiting = self._wake_timer is None and len(self._sleeping) == len(self._peers)
        if waiting and self.end > self.base:
            self._drop_before(self.end)

    # --- broadcasts ----------------------------------------------------------------

    def append(self, event: Broadcast, *, comm_event: bool = False) -> None:
        """One broadcast for every attached peer: framed once per framing in use."""
        if not self._peers:
            return
        size = 0
        for frames, encoder in self._slots:
            frame = b"" if encoder is None else encoder.encode(event)
            frames.append(frame)
            size = max(size, len(frame))
        self.comm.append(comm_event)
        if not comm_event:
            self.last_ordered = self.end
        self._offsets.append(self._total)
        self._total += size
        self.end += 1
        if self._sleeping and self._wake_timer is None:
            due = self._last_wake + len(self._peers) / self.write_rate
            delay = due - time.monotonic()
            loop = asyncio.get_running_loop()
            if delay <= 0:  # after the batch this broadcast came in, whatever else it adds
                self._wake_timer = loop.call_soon(self._wake_sleepers)
            else:
                self._wake_timer = loop.call_later(delay, self._wake_sleepers)
        if self._total - self.offset(self._oldest) > self._limit or self.end >= self._next_trim:
            self._check_readers()

    def _wake_sleepers(self) -> None:
        """Write every waiting peer, here and now: one callback, not one per peer."""
        self._wake_timer = None
        self._last_wake = time.monotonic()
        sleeping, self._sleeping = self._sleeping, set()
        for peer in sleeping:
            peer.write_now()

    def offset(self, position: int) -> int:
        """The bytes appended before `position` (the end's: all of them)."""
        if position >= self.end:
            return self._total
        return self._offsets[position - self.base]

    def unread_bytes(self, peer: Peer) -> int:
        return self._total - self.offset(peer.cursor)

    def joined(self, start: int) -> bytes:
        """STREAM frames from `start` to the end as one buffer, shared by every peer that
        asks for the same span (peers woken by the same broadcasts usually do)."""
        cached_start, cached_end, data = self._joined
        if (cached_start, cached_end) != (start, self.end):
            data = self.frames[Framing.STREAM].join(start - self.base, self.end - self.base)
            self._joined = (start, self.end, data)
        return data

    def _check_readers(self) -> None:
        """Peers too far behind overflow; what every peer has read is dropped."""
        for peer in list(self._peers):
            if self.unread_bytes(peer) + peer.queued_bytes > peer.queue_limit:
                peer.overflow()
        self._next_trim = self.end + TRIM_EVERY
        self._drop_before(min((p.cursor for p in self._peers), default=self.end))

    def _drop_before(self, position: int) -> None:
        """Drop the entries before `position`, which every attached peer has read."""
        self._oldest = position
        drop = position - self.base
        if drop > 0:
            del self.comm[:drop]
            del self._offsets[:drop]
            for frames in self.frames.values():
                frames.drop(drop)
            self.base = position
            if self._joined[0] < position:  # a span nobody can ask for again
                self._joined = (0, 0, b"")

    def __len__(self) -> int:
        """Entries kept (not yet read by every peer)."""
        return self.end - self.base
