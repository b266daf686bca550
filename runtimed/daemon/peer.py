"""One connected client as the room sees it: sync state and a bounded outgoing queue.

The room never waits on a peer. It hands frames to `Peer.send` (which only appends)
and flags `request_sync` (sync messages are generated when the writer is ready to
write, so a slow peer gets one fresh message instead of a backlog). A peer whose
backlog grows past its limit loses its queued comm broadcasts for one `comm_sync`
built at write time; a peer that stays stuck past the stall timeout is dropped.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from collections.abc import Callable, Iterable
from typing import Protocol

import structlog

from notebook_doc import SyncState

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

log = structlog.get_logger(__name__)

_peer_ids = itertools.count(1)


class FrameTransport(Protocol):
    """Where a peer's frames go: a Unix stream or a WebSocket."""

    async def send_frames(self, frames: list[bytes]) -> None: ...

    def send_now(self, frame: bytes) -> None:
        """Write one frame at once, between batches (an error frame before a close)."""

    def close(self) -> None: ...


def fan_out(peers: Iterable[Peer], event: Broadcast, *, comm_event: bool = False) -> None:
    """One broadcast to many peers: encoded and framed once per framing (not once per
    peer), the same bytes queued for each; each writer sends its batch in one write.
    The per-peer step is `Peer.push`, inlined: it runs for every delivered frame."""
    frames: dict[Framing, bytes] = {}
    framing: Framing | None = None
    item = (comm_event, b"")
    size = 0
    for peer in peers:
        if peer._closed or (comm_event and peer._comm_resync):
            continue
        if peer.conn.framing is not framing:
            framing = peer.conn.framing
            frame = frames.get(framing) or frames.setdefault(framing, peer.encode(event))
            item, size = (comm_event, frame), len(frame)
        peer._queue.append(item)
        peer._queued_bytes += size
        if peer._queued_bytes > peer.queue_limit:
            peer._overflow()
        if not peer._woken:
            peer._woken = True
            peer._wake.set()


class Peer:
    """A client connection's outgoing side and its per-room sync state."""

    def __init__(
        self,
        conn: Connection,
        transport: FrameTransport,
        *,
        queue_limit: int,
        stall_timeout: float,
        name: str = "",
    ) -> None:
        self.id = f"p{next(_peer_ids)}"
        self.name = name
        self.conn = conn
        self.transport = transport
        self.queue_limit = queue_limit
        self.stall_timeout = stall_timeout
        self.sync_state = SyncState()
        # Set by the room on join: make this peer's next sync message (None: nothing to say).
        self.sync_source: Callable[[SyncState], bytes | None] | None = None
        # Set by the room on join: a fresh comm_sync broadcast, used after an overflow.
        self.comm_sync_source: Callable[[], Broadcast] | None = None
        # Set by the room on join: the doc's save() bytes, for a peer too far behind.
        self.snapshot_source: Callable[[], bytes] | None = None
        self.log = log.bind(peer_id=self.id)
        self._queue: deque[tuple[bool, bytes]] = deque()  # (droppable comm event, frame)
        self._queued_bytes = 0
        self._sync_pending = False
        self._sync_after_queue = False  # the next sync message goes after the queued frames
        self._acks: list[bytes] = []  # sync answers made on receipt, sent before anything
        self._comm_resync = False
        self._wake = asyncio.Event()
        self._woken = False
        self._closed = False

    # --- called by the room (never blocks) -----------------------------------------

    def send(self, event: object, *, comm_event: bool = False) -> None:
        """Queue one event; `comm_event` marks live comm broadcasts that a comm_sync can
        replace. (A broadcast to many peers goes through `fan_out`, framed once.)"""
        if self.takes(comm_event):
            self.push(comm_event, self.encode(event))

    def takes(self, comm_event: bool) -> bool:
        """Whether a frame is wanted now: not after close, and no comm broadcast while a
        comm_sync built at write time will carry it."""
        return not (self._closed or (comm_event and self._comm_resync))

    def push(self, comm_event: bool, frame: bytes) -> None:
        """Queue an encoded frame and wake the writer (once per batch)."""
        self._queue.append((comm_event, frame))
        self._queued_bytes += len(frame)
        if self._queued_bytes > self.queue_limit:
            self._overflow()
        if not self._woken:  # one wake-up per batch, however many frames join it
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

    def request_sync(self) -> None:
        self._sync_pending = True
        if not self._woken:
            self._woken = True
            self._wake.set()

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
        self._acks.append(self.conn.send(Sync(data)))
        self._wake.set()

    def restart_sync(self, *events: object) -> None:
        """Queue `events`, then restart sync from a fresh state: every later sync message
        goes out after them (a compaction's notice and SNAPSHOT come before the new doc's
        first sync message)."""
        for event in events:
            self.send(event)
        self.sync_state = SyncState()
        self._sync_after_queue = True
        self.request_sync()

    def _overflow(self) -> None:
        kept = deque(item for item in self._queue if not item[0])
        dropped = len(self._queue) - len(kept)
        self._queue = kept
        self._queued_bytes = sum(len(frame) for _, frame in kept)
        if dropped and self.comm_sync_source is not None:
            self._comm_resync = True
        self.log.warning(
            "peer_lagging", dropped_comm_events=dropped, queued_bytes=self._queued_bytes
        )

    # --- the writer task -------------------------------------------------------------

    async def run_writer(self) -> None:
        """Write queued frames in batches until closed; drop the peer if it stays stuck."""
        while not self._closed:
            await self._wake.wait()
            self._wake.clear()
            self._woken = False
            frames = self._take_batch()
            if not frames:
                continue
            try:
                async with asyncio.timeout(self.stall_timeout):
                    await self.transport.send_frames(frames)
            except TimeoutError:
                self.log.warning("peer_dropped", reason="stalled", timeout=self.stall_timeout)
                self.close()
                return

    def _take_batch(self) -> list[bytes]:
        # The sync message goes first: a broadcast about a doc change (execution_done
        # after outputs, say) must not overtake the change itself.
        frames: list[bytes] = self._acks
        self._acks = []
        if self._sync_after_queue:
            self._sync_after_queue = False
            frames.extend(frame for _, frame in self._queue)
            self._queue.clear()
            self._queued_bytes = 0
        if self._sync_pending and self.sync_source is not None:
            self._sync_pending = False
            data = self.sync_source(self.sync_state)
            if data is not None and len(data) >= self.conn.max_frame_size:
                frames.append(self._restart_from_snapshot(len(data)))
                data = self.sync_source(self.sync_state)
            if data is not None:
                frames.append(self.conn.send(Sync(data)))
        frames.extend([frame for _, frame in self._queue])
        self._queue.clear()
        self._queued_bytes = 0
        if self._comm_resync and self.comm_sync_source is not None:
            self._comm_resync = False
            frames.append(self.conn.send(self.comm_sync_source()))
        return frames

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
        self._wake.set()
        self.transport.close()

    @property
    def closed(self) -> bool:
        return self._closed
