"""A room's compaction: when to compact, and the compaction itself up to the switch
(docs/compaction.md).

The heavy part, building the fresh doc, runs on the event loop in steps
(compaction_build). Carrying what changed meanwhile and the switch itself run with no
`await` in between, so the room stays the doc's only writer. The move of every peer to
the new epoch, and the late changes of those that have not moved yet, are
compaction_switch's.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

from notebook_doc import NotebookDoc, NotebookDocError
from notebook_doc.compaction import carry, read_content_since

from ..wire import Broadcast, Switch
from .compaction_budget import HistoryBudget
from .compaction_build import Built, build, read_in_slices
from .compaction_switch import EpochSwitch, Late
from .debounce import Debouncer

if TYPE_CHECKING:
    from .peer import Peer
    from .room import NotebookRoom


@dataclass(frozen=True, slots=True)
class CompactionReport:
    """One compaction, as `runtimed status` and the log show it."""

    epoch: int
    at: float  # unix time
    reason: str
    changes: int  # changes the old epoch's history held (as the room counted them)
    bytes_before: int  # size of the old epoch's last save
    bytes_after: int  # size of the fresh doc
    history_before: int  # raw bytes of the old epoch's history (what it held in memory)
    history_after: int  # raw bytes of the fresh doc's
    duration: float  # seconds, from the first read to the switch


class Compactor:
    """Compaction for one room; the room forwards doc changes, late frames and leaves."""

    def __init__(self, room: NotebookRoom) -> None:
        self.room = room
        self.settings = room.settings
        self.epoch = 0
        self.budget = HistoryBudget(
            room.doc, changes=room.doc.change_count(), ratio=self.settings.compact_ratio
        )
        self.last: CompactionReport | None = None
        self._switch: EpochSwitch | None = None
        self._last_client_change = float("-inf")
        self._last_attempt = float("-inf")
        self._timer: asyncio.TimerHandle | None = None
        self._auto_scope: anyio.CancelScope | None = None  # an automatic one under way
        self._lock = asyncio.Lock()  # one compaction at a time
        # A room at rest is compacted once more if its file is over the ratio: a history
        # under the memory budget can still make a small notebook's file many times its
        # content (docs/compaction.md, "At rest").
        self._rest = Debouncer(self._at_rest, quiet=self.settings.compact_rest, max_delay=math.inf)
        self._fresh_file: int | None = None  # a fresh doc's saved size, when last measured
        if room.persister.saved_bytes is None and room.persister.path.exists():
            room.persister.saved_bytes = room.persister.path.stat().st_size
        self._maybe_arm("history over budget on load")

    # --- what the room tells us ------------------------------------------------------

    def changed(self) -> None:
        """The doc changed (any writer)."""
        self.budget.changes += 1
        self._maybe_arm("history over budget")
        if self.settings.compaction and not self.room.closed:
            with contextlib.suppress(RuntimeError):  # no loop: a room built by a tool
                self._rest.poke()

    def client_changed(self) -> None:
        """A client's change arrived: the room is not quiet."""
        self._last_client_change = _now()

    def comms_cleared(self) -> None:
        """A kernel restart or shutdown dropped every comm: a good time, if over budget."""
        self._maybe_arm("comms cleared")

    def switching(self, peer: Peer) -> bool:
        """True while `peer` is still in the previous epoch (its SYNC is late)."""
        return self._switch is not None and peer.id in self._switch.pending

    def peer_left(self, peer: Peer) -> None:
        if self._switch is not None and self._switch.left(peer):
            self._release_if_done()

    # --- budget and timing -------------------------------------------------------------

    def over_budget(self) -> bool:
        return self.budget.over(self.room.doc, self.settings.compact_changes)

    def _file_over_budget(self) -> bool:
        """The last save is over `compact_ratio` times a fresh doc's (or that is unknown)."""
        saved = self.room.persister.saved_bytes
        if saved is None:
            return False
        return self._fresh_file is None or saved > self.settings.compact_ratio * self._fresh_file

    def _maybe_arm(self, reason: str) -> None:
        if not self.settings.compaction or self._timer is not None or self.room.closed:
            return
        if self._auto_scope is not None:
            return
        if not self.over_budget():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # a room built outside the daemon (tools, tests)
            return
        self._timer = loop.call_later(self._wait_needed(), self._due, reason)

    def _wait_needed(self) -> float:
        now = _now()
        quiet = self._last_client_change + self.settings.compact_quiet - now
        interval = self._last_attempt + self.settings.compact_interval - now
        return max(0.0, quiet, interval)

    def _due(self, reason: str) -> None:
        self._timer = None
        if self.room.closed or not self.over_budget():
            return
        if self._switch is not None:
            return  # re-armed when the switch ends
        wait = self._wait_needed()
        if wait > 0:
            self._timer = asyncio.get_running_loop().call_later(wait, self._due, reason)
            return
        self._auto_scope = anyio.CancelScope()
        self.room.tasks.start_soon(self._auto, reason, self._auto_scope)

    def _at_rest(self) -> None:
        """No doc change for `compact_rest` seconds (so no client change either)."""
        if self.room.closed or self._auto_scope is not None or self._switch is not None:
            return
        if self._file_over_budget():
            self._auto_scope = anyio.CancelScope()
            self.room.tasks.start_soon(self._auto, "file over budget at rest", self._auto_scope)

    async def _auto(self, reason: str, scope: anyio.CancelScope) -> None:
        """In the room's group; `close` cancels it."""
        try:
            with scope:
                await self._run(reason, force=False)
        except (NotebookDocError, OSError) as exc:  # the room goes on with its old history
            self.room.log.exception("compaction_failed", reason=reason, error=str(exc))
        finally:
            if self._auto_scope is scope:
                self._auto_scope = None

    async def compact_now(self) -> dict[str, Any] | None:
        """The `compact` request: compact now, whatever the budget and the quiet; None
        when the room closed first."""
        report = await self._run("requested", force=True)
        if report is None:
            return None
        return {
            "epoch": report.epoch,
            "changes": report.changes,
            "bytes_before": report.bytes_before,
            "bytes_after": report.bytes_after,
            "duration": report.duration,
        }

    # --- the compaction ------------------------------------------------------------------

    async def _run(self, reason: str, *, force: bool) -> CompactionReport | None:
        async with self._lock:
            while self._switch is not None:  # one switch at a time
                await self._switch.done.wait()
            room = self.room
            if room.closed:
                return None
            self._last_attempt = _now()
            started = time.perf_counter()
            # Widget writes the coalescer holds land in whichever doc is the room's when
            # it flushes: in epoch n they are carried like any other write.
            old = room.doc
            with room.persister.held():  # the new epoch's file replaces the old one
                content, versions = await read_in_slices(old)
                built = await build(content, self._base_copy(old))
                await asyncio.sleep(0)  # the snapshot's bytes were joined; the loop runs
                for _ in room.trust.warm(built.doc):  # what the save after the switch signs
                    await asyncio.sleep(0)
                # What epoch n received while we read and built (widget states, outputs,
                # edits), carried with the loop running after it: the switch below
                # carries only what came since, and reads nothing if nothing did.
                heads = old.get_heads()
                later, versions = read_content_since(old, content, versions)
                carry(built.doc, content, later, comms=True)
                content = later
                await asyncio.sleep(0)
            if room.closed or room.doc is not old:
                return None
            if old.get_heads() != heads:
                later, _ = read_content_since(old, content, versions)
                carry(built.doc, content, later, comms=True)
            self.budget.fresh = built.doc.history_size([])
            self._fresh_file = len(built.snapshot)
            if not force and not (self.over_budget() or self._file_over_budget()):
                room.log.info(
                    "compaction_skipped",
                    changes=self.budget.changes,
                    history=self.budget.size,
                    fresh=self.budget.fresh,
                )
                return None
            report = self._switch_to(built, reason, started)
            del old, content, later, versions
        # The new epoch replaces the file (atomic rename), from the snapshot's bytes. The
        # save reads the comms' signature first: the loop runs between switch and save.
        await asyncio.sleep(0)
        await room.persister.save((built.snapshot_heads, built.snapshot))
        if self._switch is None:  # nobody kept the old doc: give its memory back
            self.room.trims.ask()
        return report

    def _base_copy(self, doc: NotebookDoc) -> NotebookDoc | None:
        """The doc as the room's .ipynb last had it (the autosave's merge base), for the
        fresh doc to hold that version too: a later disk edit still merges against it."""
        saver = self.room.saver
        if saver is None or saver.base is None:
            return None
        try:
            return doc.fork(heads=saver.base)
        except NotebookDocError:  # a base this doc does not know: the saver copes alone
            return None

    def _switch_to(self, built: Built, reason: str, started: float) -> CompactionReport:
        room = self.room
        old = room.doc
        old_heads = old.get_heads()
        history_before = self.budget.measure(old)
        snapshot = built.snapshot
        room.replace_doc(built.doc, (built.snapshot_heads, snapshot), base=built.base_heads)
        self.epoch += 1
        changes = self.budget.changes
        self.budget.new_epoch(built.doc)
        report = CompactionReport(
            epoch=self.epoch,
            at=time.time(),
            reason=reason,
            changes=changes,
            bytes_before=room.persister.saved_bytes or 0,
            bytes_after=len(snapshot),
            history_before=history_before,
            history_after=self.budget.size,
            duration=round(time.perf_counter() - started, 4),
        )
        self.last = report
        notice = Broadcast(
            "compaction",
            {
                "epoch": self.epoch,
                "previous_epoch": self.epoch - 1,
                "heads": [head.hex() for head in old_heads],
                "deadline": self.settings.compact_deadline,
                "reason": reason,
                "changes": report.changes,
                "bytes_before": report.bytes_before,
                "bytes_after": report.bytes_after,
            },
        )
        switch = EpochSwitch(old, self.epoch, room.peers.values(), notice, snapshot)
        room.log.info("compacted", peers=len(switch.pending), **dataclasses.asdict(report))
        if switch.pending:
            self._switch = switch
            loop = asyncio.get_running_loop()
            switch.timer = loop.call_later(self.settings.compact_deadline, self._expire, switch)
        return report

    # --- the peers' move (compaction_switch.py) ---------------------------------------

    def late_sync(self, peer: Peer, data: bytes) -> bool:
        """A SYNC `peer` sent against the previous epoch; True if the room's doc changed.

        Raises SyncMessageError (the server's `bad_sync`) for bytes that are not one.
        """
        assert self._switch is not None
        return self._late(peer, self._switch.late_sync(self.room.doc, peer, data))

    def receive_switch(self, peer: Peer, event: Switch) -> bool:
        """`peer`'s SWITCH: apply its late changes; True if the room's doc changed."""
        switch = self._switch
        if switch is None or peer.id not in switch.pending or event.epoch != switch.epoch:
            expected = "none" if switch is None else str(switch.epoch)
            peer.abort("bad_switch", f"SWITCH to epoch {event.epoch}, expected {expected}")
            return False
        changed = self._late(peer, switch.receive_switch(self.room.doc, peer, event))
        self._release_if_done()
        return changed

    def _late(self, peer: Peer, late: Late) -> bool:
        if late is Late.DROPPED:
            self.peer_left(peer)
        elif late is not Late.NOTHING:
            self.client_changed()
        return late is Late.CARRIED

    def _expire(self, switch: EpochSwitch) -> None:
        switch.expire(self.room.peers, self.settings.compact_deadline)
        self._release_if_done()

    def _release_if_done(self) -> None:
        switch = self._switch
        if switch is None or switch.pending:
            return
        self._switch = None  # the old doc goes with it
        switch.end()
        self.room.trims.ask()
        self._maybe_arm("history over budget")

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._rest.close()
        if self._auto_scope is not None:
            self._auto_scope.cancel()
        switch, self._switch = self._switch, None
        if switch is not None:
            switch.end()

    def info(self) -> dict[str, Any]:
        last = self.last
        return {
            "epoch": self.epoch,
            "history": {
                "changes": self.budget.changes,
                "bytes": self.room.persister.saved_bytes,
                "size": self.budget.size,
                "fresh_size": self.budget.fresh,
            },
            "last_compaction": None if last is None else dataclasses.asdict(last),
            "switching": 0 if self._switch is None else len(self._switch.pending),
        }


def _now() -> float:
    return time.monotonic()
