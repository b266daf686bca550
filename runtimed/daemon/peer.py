"""One connected client as the room sees it: sync state and a bounded outgoing queue.

The room never waits on a peer. It hands frames meant for one peer to `Peer.send`
(which only appends), broadcasts to the room's `BroadcastLog` (framed once, read by
every peer from its own cursor), and flags `request_sync` (sync messages are generated
when the peer is written to, so a slow peer gets one fresh message instead of a
backlog; `SyncPacing` holds the next one while a message with changes is in flight).

Writes happen on the loop, not in a task per peer: a wake schedules one write of
everything queued (its own frames and the room's broadcasts, in the order they were
queued), and the room's log writes every waiting peer in one callback. Only a write
the transport cannot take at once (a full socket buffer, any WebSocket send) goes to
the peer's writer task, which waits for the drain and drops a peer that stays stuck
past the stall timeout. With 50 peers in a widget burst, a task wake per peer per
batch was a third of the daemon's CPU. A peer whose backlog grows past its limit loses
its queued comm broadcasts for one `comm_sync` built at write time.
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
        self._woken = False  # a write is due: scheduled, or after the drain under way
        self._draining: list[bytes] | None = None  # the writer task's batch, awaiting drain
        self._failure: Exception | None = None  # a write's error, raised by the writer task
        self._drain = asyncio.Event()  # the writer task has a batch (or an error, or closed)
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
        """Write at the loop's next turn: once per batch, however many frames join it."""
        if not self._woken and not self._closed:
            self._woken = True
            if self._draining is None:
                asyncio.get_running_loop().call_soon(self.write_now)

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
        if not paced or self._sync_now:
            self._sync_now = True
            self.wake()
            return
        if self._pacing_timer is not None:
            return  # already held: its timer (or the answer) lets it go
        delay = self.pacing.wait(self._room_size())
        if delay > 0:
            self._hold_sync(delay)
            return
        self._write_paced()

    def _write_paced(self) -> None:
        """A paced SYNC may go: with the room's next write of broadcasts if one is due (a
        burst: it rides along, no write of its own), else at the loop's next turn."""
        if not self._rides_along():
            self.wake()

    def _rides_along(self) -> bool:
        """A wake of the room's log already due writes this peer (its SYNC goes along)."""
        return self.broadcast_log is not None and self.broadcast_log.will_write(self)

    def sync_received(self, data: bytes) -> None:
        """The peer's SYNC `data` was applied: it may answer the message in flight, so a
        held message is looked at again now instead of at its timer."""
        self.pacing.received(data)
        if self._pacing_timer is not None:
            self._pacing_timer.cancel()
            self._pacing_timer = None
            self._write_paced()

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

    # --- writing ----------------------------------------------------------------------

    def write_now(self) -> None:
        """Write everything queued in one write, unless a drain is under way (then right
        after it); what the transport cannot take at once goes to the writer task."""
        if self._closed:
            return
        if self._draining is not None:
            self._woken = True
            return
        self._woken = False
        try:
            frames = self._take_batch()
            if frames and not self.transport.send_nowait(frames):
                self._draining = frames
                self._drain.set()
                return
        except Exception as exc:  # the writer task raises it: the connection's error
            self._failure = exc
            self._drain.set()
            return
        if self.broadcast_log is not None:
            self.broadcast_log.sleep(self)

    async def run_writer(self) -> None:
        """Send the batches the transport could not take at once, waiting for each drain,
        until closed; drop the peer if one stays stuck past the stall timeout."""
        if self.broadcast_log is not None:
            self.broadcast_log.sleep(self)
        while not self._closed:
            await self._drain.wait()
            self._drain.clear()
            if self._failure is not None:
                failure, self._failure = self._failure, None
                raise failure
            if self._draining is None:
                continue
            try:
                async with asyncio.timeout(self.stall_timeout):
                    await self.transport.send_frames(self._draining)
            except TimeoutError:
                self.log.warning("peer_dropped", reason="stalled", timeout=self.stall_timeout)
                self.close()
                return
            self._draining = None
            if self._woken:
                self.write_now()
            elif self.broadcast_log is not None:
                self.broadcast_log.sleep(self)

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
        if not urgent and self._pacing_timer is not None:
            return  # held: its timer (or the answer, see `sync_received`) wakes us
        delay = 0.0 if urgent else self.pacing.wait(self._room_size())
        if delay > 0:
            self._hold_sync(delay)
            return
        assert self.sync_source is not None
        if self._pacing_timer is not None:  # urgent before the interval ended
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
        """Write again when pacing lets the pending sync message go (an answer can bring
        that moment closer: `sync_received` drops the timer and looks again)."""
        self._pacing_timer = asyncio.get_running_loop().call_later(delay, self._pacing_over)

    def _pacing_over(self) -> None:
        self._pacing_timer = None
        if not self._rides_along():
            self.write_now()  # already a callback of its own: no need to schedule another

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
        self._drain.set()
        self.transport.close()

    @property
    def closed(self) -> bool:
        return self._closed
