"""The move of a room's peers to a new epoch, and the late changes of those that have
not moved yet (docs/compaction.md, "How" steps 4 and 6, "Interleavings").

At the switch every peer gets the `compaction` BROADCAST and the SNAPSHOT, and a fresh
sync state; the old doc is kept, with each peer's sync state for it, until that peer
sends SWITCH, leaves or is dropped at the deadline. A late SYNC or SWITCH is applied
to the old doc and what it changed is carried into the room's doc within the room's
own call, with no `await`: the room stays the doc's only writer. Each method says
what happened (`Late`); the compactor acts on it.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING

from notebook_doc import NotebookDoc, NotebookDocError, SyncState, sync_message_heads
from notebook_doc.compaction import Content, carry, read_content

from ..wire import Broadcast, Snapshot, Switch

if TYPE_CHECKING:
    from .peer import Peer


class Late(enum.Enum):
    """What a late frame did."""

    NOTHING = "nothing"  # the old doc did not change
    APPLIED = "applied"  # the old doc took a client's change; nothing to carry
    CARRIED = "carried"  # ... and the room's doc changed with it
    DROPPED = "dropped"  # the peer was aborted: it leaves the switch


class EpochSwitch:
    """An epoch change in progress: the old doc, kept until every peer has moved."""

    def __init__(
        self,
        old: NotebookDoc,
        epoch: int,
        peers: Iterable[Peer],
        notice: Broadcast,
        snapshot: bytes,
    ) -> None:
        """Move every peer: `notice` (the `compaction` BROADCAST), then the SNAPSHOT."""
        self.old = old
        self.epoch = epoch
        self.pending: dict[str, SyncState] = {}  # peer id -> its sync state for the old doc
        self.late_changes: dict[str, int] = {}  # peer id -> changes its SWITCHes added
        self.done = asyncio.Event()
        self.timer: asyncio.TimerHandle | None = None
        # The old doc's content as last read (comms aside): only late changes move it, and
        # most late SYNC and SWITCH frames (a lagging peer's) bring none, so each reads it
        # once per carried change, not once per frame.
        self.content: Content | None = None
        for peer in peers:
            self.pending[peer.id] = peer.sync_state
            peer.restart_sync(notice, Snapshot(snapshot))

    def late_sync(self, doc: NotebookDoc, peer: Peer, data: bytes) -> Late:
        """A SYNC `peer` sent against the old epoch, carried into the room's `doc`.

        Raises SyncMessageError (the server's `bad_sync`) for bytes that are not one.
        """
        if any(doc.has_change(head) for head in sync_message_heads(data)):
            peer.log.warning("compaction_missed", epoch=self.epoch)
            peer.abort(
                "compaction_missed",
                f"the room moved to epoch {self.epoch} and this client took its snapshot "
                "without sending SWITCH; its edits not sent before the switch were not "
                "applied: reconnect",
            )
            return Late.DROPPED
        state = self.pending[peer.id]
        return self._carry(doc, peer, lambda: self.old.receive_sync_message(state, data))

    def receive_switch(self, doc: NotebookDoc, peer: Peer, event: Switch) -> Late:
        """`peer`'s SWITCH to this epoch (the caller checked it names it): its late
        changes carried into the room's `doc`; the last one of its SWITCHes moves it."""
        late = Late.NOTHING
        if event.changes:  # most peers have nothing late: no read of the old doc then
            count = self.old.change_count()
            try:
                late = self._carry(doc, peer, lambda: self.old.apply_changes(list(event.changes)))
            except NotebookDocError as exc:
                peer.abort("bad_switch", f"the SWITCH's changes do not apply: {exc}")
                return Late.DROPPED
            added = self.old.change_count() - count
            self.late_changes[peer.id] = self.late_changes.get(peer.id, 0) + added
        if not event.more:
            changes = self.late_changes.pop(peer.id, 0)
            del self.pending[peer.id]
            peer.send(Broadcast("switched", {"epoch": self.epoch, "late_changes": changes}))
            peer.log.info("peer_switched", epoch=self.epoch, late_changes=changes)
        return late

    def _carry(self, doc: NotebookDoc, peer: Peer, apply: Callable[[], bool]) -> Late:
        before = self.content or read_content(self.old, comms=False)
        self.content = before
        if not apply():
            return Late.NOTHING
        self.content = None  # read again at the next late frame, if it can be
        try:
            self.content = read_content(self.old, comms=False)
            return Late.CARRIED if carry(doc, before, self.content) else Late.APPLIED
        except NotebookDocError as exc:  # the late change broke the schema: nothing to carry
            peer.log.warning("late_change_not_carried", error=str(exc))
            message = f"your change against the previous epoch could not be carried: {exc}"
            peer.send(Broadcast("error", {"code": "schema_violation", "message": message}))
            return Late.APPLIED

    def left(self, peer: Peer) -> bool:
        """`peer` left (or was dropped); True if it had not moved yet."""
        if self.pending.pop(peer.id, None) is None:
            return False
        peer.log.info("peer_left_during_switch", epoch=self.epoch)
        return True

    def expire(self, peers: Mapping[str, Peer], deadline: float) -> None:
        """The deadline passed: every peer that has not moved is dropped."""
        self.timer = None
        for peer_id in list(self.pending):
            peer = peers.get(peer_id)
            if peer is not None:
                peer.log.warning("compaction_timeout", epoch=self.epoch)
                message = f"no SWITCH to epoch {self.epoch} within {deadline:g} s"
                peer.abort("compaction_timeout", message)
        self.pending.clear()

    def end(self) -> None:
        """Over (every peer moved, or the room closed): whoever waits for it goes on."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.done.set()
