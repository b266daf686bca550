"""One connected client as the room sees it: sync state and a bounded outgoing queue.

The room never waits on a peer. It hands frames meant for one peer to `Peer.send`
(which only appends), broadcasts to the room's `BroadcastLog` (framed once, read by
every peer from its own cursor), and flags `request_sync` (sync messages are generated
when the writer is ready to write, so a slow peer gets one fresh message instead of a
backlog; `SyncPacing` holds the next one while a message with changes is in flight).
The writer sends everything queued in one write, its own frames and the room's
broadcasts in the order they were queued. A peer whose backlog grows past its
limit loses its queued comm broadcasts for one `comm_sync` built at write time; a peer
that stays stuck past the stall timeout is dropped.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections import deque
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Protocol

import structlog

from notebook_doc import SyncState

from ..config import ROOM_SYNC_RATE, SYNC_PACING
from ..wire import (
    Broadcast,
    Connection,
    ErrorInfo,
    Framing,
    LocalProtocolError,
    Response,
    Snapshot,
    Sync,
)
from .sync_pacing import SyncPacing

if TYPE_CHECKING:
    from .broadcast_log import BroadcastLog

log = structlog.get_logger(__name__)

_peer_ids = itertools.count(1)


class FrameTransport(Protocol):
    """Where a peer's frames go: a Unix stream or a WebSocket."""

    async def send_frames(self, frames: list[bytes]) -> None: ...

    def send_nowait(self, frames: list[bytes]) -> bool:
        """Write `frames` at once if that cannot block (True), else leave them (False)."""

    def send_now(self, frame: bytes) -> None:
        """Write one frame at once, between batches (an error frame before a close)."""

    def close(self) -> None: ...


class Peer:
    """A client connection's outgoing side and its per-room sync state."""

    def __init__(
        self,
        conn: Connection,
        transport: FrameTransport,
        *,
        queue_limit: int,
        stall_timeout: float,
        sync_pacing: float = SYNC_PACING,
        room_sync_rate: float = ROOM_SYNC_RATE,
        name: str = "",
    ) -> None:
        self.id = f"p{next(_peer_ids)}"
        self.name = name
        self.conn = conn
        self.transport = transport
        self.queue_limit = queue_limit
        self.stall_timeout = stall_timeout
        self.sync_state = SyncState()
        self.pacing = SyncPacing(sync_pacing, room_sync_rate)
        self._pacing_timer: asyncio.TimerHandle | None = None
        # Set by the room on join: make this peer's next sync message (None: nothing to say).
        self.sync_source: Callable[[SyncState], bytes | None] | None = None
        # Set by the room on join: a fresh comm_sync broadcast, used after an overflow.
        self.comm_sync_source: Callable[[], Broadcast] | None = None
        # Set by the room on join: the doc's save() bytes, for a peer too far behind.
        self.snapshot_source: Callable[[], bytes] | None = None
        self.log = log.bind(peer_id=self.id)
        # Frames for this peer alone: (the room's broadcast position when queued,
        # droppable comm event, frame); the room's broadcasts come from its log.
        self._queue: deque[tuple[int, bool, bytes]] = deque()
        self.queued_bytes = 0
        self.broadcast_log: BroadcastLog | None = None  # set by the room's log on attach
        self.cursor = 0  # the position of the next broadcast this peer has not taken
        self._sync_pending = False
        self._sync_now = False  # the pending sync message may not wait for pacing
        self._sync_after_queue = False  # the next sync message goes after the queued frames
        self._acks: list[bytes] = []  # sync answers made on receipt, sent before anything
        self._comm_resync = False
        self._wake = asyncio.Event()
        self._woken = False
        self._closed = False

    # --- called by the room (never blocks) -----------------------------------------

    def send(self, event: object, *, comm_event: bool = False) -> None:
        """Queue one event for this peer alone; `comm_event` marks live comm broadcasts
        that a comm_sync can replace. (The room's broadcasts go through its log.)"""
        if self._closed or (comm_event and self._comm_resync):
            return
        frame = self.encode(event)
        shared = self.broadcast_log
        self._queue.append((0 if shared is None else shared.end, comm_event, frame))
        self.queued_bytes += len(frame)
        unread = 0 if shared is None else shared.unread_bytes(self)
        if self.queued_bytes + unread > self.queue_limit:
            self.overflow()
        self.wake()

    def wake(self) -> None:
        """Wake the writer: once per batch, however many frames join it."""
        if not self._woken:
            self._woken = True
            self._wake.set()

    def encode(self, event: object) -> bytes:
        """The event's frame; one that would break the 16 MiB cap becomes an error saying so."""
        try:
            return self.conn.send(event)
        except LocalProtocolError as exc:
            if exc.code != "frame_too_large":
                raise
            self.log.warning("frame_too_large", kind=type(event).__name__, detail=exc.message)
            message = f"{exc.message}; the doc holds the same state"
        if isinstance(event, Response):
            refusal = ErrorInfo("frame_too_large", message)
            return self.conn.send(Response(event.id, False, None, refusal))
        name = event.event if isinstance(event, Broadcast) else type(event).__name__
        fields = {"code": "frame_too_large", "message": f"{name}: {message}"}
        return self.conn.send(Broadcast("error", fields))

    def request_sync(self, *, paced: bool = False) -> None:
        """Send a sync message at the next write; `paced`: it may wait (sync_pacing.py),
        and then wakes the writer only when it may go (the broadcasts a wake would write
        wait for the room's own, fewer wakes)."""
        self._sync_pending = True
        if paced and not self._sync_now:
            delay = self.pacing.wait(self._room_size())
            if delay > 0:
                self._hold_sync(delay)
                return
        else:
            self._sync_now = True
        self.wake()

    def sync_received(self, data: bytes) -> None:
        """The peer's SYNC `data` was applied: it may answer the message in flight."""
        self.pacing.received(data)

    def acknowledge_sync(self) -> None:
        """Make the answer to a sync message that brought changes now, not at write time.

        Generated later, it could come after the peer's next message, and when that one
        says the peer has our heads Automerge sends nothing: the peer would never learn
        that its changes arrived (a JS client's `waitSynced` would wait for ever)."""
        if self._closed or self.sync_source is None:
            return
        data = self.sync_source(self.sync_state)
        if data is None:
            return
        if len(data) >= self.conn.max_frame_size:
            self.request_sync()  # the writer restarts from a snapshot when it is too large
            return
        self._acks.append(self._sync_frame(data))
        self.wake()

    def restart_sync(self, *events: object) -> None:
        """Queue `events`, then restart sync from a fresh state: every later sync message
        goes out after them (a compaction's notice and SNAPSHOT come before the new doc's
        first sync message)."""
        for event in events:
            self.send(event)
        self.sync_state = SyncState()
        self.pacing.reset()  # nothing of the old sync is in flight any more
        self._sync_after_queue = True
        self.request_sync()

    def overflow(self) -> None:
        """Too much queued: drop the comm broadcasts (a comm_sync made at write time
        replaces them), keep the rest, and read the room's log from its end."""
        queued = list(self._take_queued())
        kept = deque(item for item in queued if not item[1])
        dropped = len(queued) - len(kept)
        self._queue = kept
        self.queued_bytes = sum(len(frame) for _, _, frame in kept)
        if dropped and self.comm_sync_source is not None:
            self._comm_resync = True
        self.log.warning(
            "peer_lagging", dropped_comm_events=dropped, queued_bytes=self.queued_bytes
        )

    def _take_queued(self) -> Iterator[tuple[int, bool, bytes]]:
        """Take every queued item, this peer's own and the room's broadcasts, in the
        order they were queued (an own frame goes before the broadcasts appended after it)."""
        own, self._queue, self.queued_bytes = self._queue, deque(), 0
        shared = self.broadcast_log
        if shared is None or self.cursor == shared.end:
            return iter(own)
        start, self.cursor = self.cursor, shared.end
        first, last = start - shared.base, shared.end - shared.base
        broadcasts = zip(
            range(start, shared.end),
            shared.comm[first:last],
            shared.frames[self.conn.framing][first:last],
            strict=True,
        )
        return heapq.merge(own, broadcasts, key=lambda item: item[0])  # ties: own first

    def _queued_frames(self) -> list[bytes]:
        """Take the frames to write after (or before) the sync message."""
        shared = self.broadcast_log
        if (
            not self._queue
            and not self._comm_resync
            and shared is not None
            and self.conn.framing is Framing.STREAM
            and self.cursor < shared.end
        ):  # the usual batch: only broadcasts, joined once for every peer that asks
            data, self.cursor = shared.joined(self.cursor), shared.end
            return [data]
        if self._comm_resync:  # a comm_sync made at write time carries the comm events
            return [frame for _, comm, frame in self._take_queued() if not comm]
        return [frame for _, _, frame in self._take_queued()]

    # --- the writer task -------------------------------------------------------------

    async def run_writer(self) -> None:
        """Write queued frames in batches until closed; drop the peer if it stays stuck."""
        while not self._closed:
            if self.broadcast_log is not None:
                self.broadcast_log.sleep(self)
            await self._wake.wait()
            self._wake.clear()
            self._woken = False
            frames = self._take_batch()
            if not frames or self.transport.send_nowait(frames):
                continue  # the usual batch: no drain to wait for, so no stall to time
            try:
                async with asyncio.timeout(self.stall_timeout):
                    await self.transport.send_frames(frames)
            except TimeoutError:
                self.log.warning("peer_dropped", reason="stalled", timeout=self.stall_timeout)
                self.close()
                return

    def _room_size(self) -> int:
        return 1 if self.broadcast_log is None else max(1, self.broadcast_log.readers)

    def _take_batch(self) -> list[bytes]:
        # The sync message goes first: a broadcast about a doc change (execution_done
        # after outputs, say) must not overtake the change itself.
        frames: list[bytes] = self._acks
        self._acks = []
        if self._sync_after_queue:
            self._sync_after_queue = False
            frames.extend(self._queued_frames())
        if self._sync_pending and self.sync_source is not None:
            self._take_sync(frames)
        frames.extend(self._queued_frames())
        if self._comm_resync and self.comm_sync_source is not None:
            self._comm_resync = False
            frames.append(self.conn.send(self.comm_sync_source()))
        return frames

    def _take_sync(self, frames: list[bytes]) -> None:
        """Add the next sync message to `frames`, unless pacing holds it (only a burst's
        changes and answers wait: while one with changes is in flight, or the last went
        too recently): then wake again when it may go. Never held before a frame that is
        not a comm event: execution_done, say, promises that the doc change before it has
        arrived."""
        urgent = self._sync_now or self._ordered_frame_queued()
        delay = 0.0 if urgent else self.pacing.wait(self._room_size())
        if delay > 0:
            self._hold_sync(delay)
            return
        assert self.sync_source is not None
        if self._pacing_timer is not None:  # answered before the interval ended
            self._pacing_timer.cancel()
            self._pacing_timer = None
        self._sync_pending = self._sync_now = False
        data = self.sync_source(self.sync_state)
        if data is not None and len(data) >= self.conn.max_frame_size:
            frames.append(self._restart_from_snapshot(len(data)))
            data = self.sync_source(self.sync_state)
        if data is not None:
            frames.append(self._sync_frame(data))

    def _ordered_frame_queued(self) -> bool:
        shared = self.broadcast_log
        if shared is not None and shared.last_ordered >= self.cursor:
            return True
        return bool(self._queue) and any(not comm for _, comm, _ in self._queue)

    def _hold_sync(self, delay: float) -> None:
        """Wake the writer when pacing lets the pending sync message go (an answer may
        bring that moment closer than the timer already set)."""
        loop = asyncio.get_running_loop()
        when = loop.time() + delay
        if self._pacing_timer is not None:
            if self._pacing_timer.when() <= when:
                return
            self._pacing_timer.cancel()
        self._pacing_timer = loop.call_at(when, self._pacing_over)

    def _pacing_over(self) -> None:
        self._pacing_timer = None
        self.wake()

    def _sync_frame(self, data: bytes) -> bytes:
        self.pacing.sent(data)
        return self.conn.send(Sync(data))

    def _restart_from_snapshot(self, sync_size: int) -> bytes:
        """A peer so far behind that its changes do not fit in a frame: send the whole doc
        (compact) and start sync over; the peer merges it and says what it still lacks."""
        if self.snapshot_source is None:
            raise LocalProtocolError("frame_too_large", f"a {sync_size}-byte sync message")
        self.log.info("resync_from_snapshot", sync_bytes=sync_size)
        self.sync_state = SyncState()
        return self.conn.send(Snapshot(self.snapshot_source()))

    def abort(self, code: str, message: str) -> None:
        """Send the spec's error frame right away, then close (a fatal protocol error)."""
        if self._closed:
            return
        try:
            frame = self.conn.error_frame(code, message)
        except LocalProtocolError:  # an error frame already went out
            frame = b""
        if frame:
            self.transport.send_now(frame)
        self.close()

    def close(self) -> None:
        """Stop writing and close the transport; idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._pacing_timer is not None:
            self._pacing_timer.cancel()
        if self.broadcast_log is not None:
            self.broadcast_log.detach(self)
        self._wake.set()
        self.transport.close()

    @property
    def closed(self) -> bool:
        return self._closed
