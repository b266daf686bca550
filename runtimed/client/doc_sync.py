"""The client's copy of the room's doc, kept in sync: SYNC both ways, SNAPSHOTs, and the
move to a compacted doc (docs/protocol.md, Sync and Compaction).

Mixed into `Client`, which supplies the connection, the write lock and `wait_for`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from notebook_doc import NotebookDoc, SyncState, sync_message_heads

from ..wire import Connection, Sync
from .epoch_switch import switch_frames
from .errors import ClientError


class DocSync:
    """`doc` and its sync state; `push` and `wait_synced` for local edits."""

    _conn: Connection
    _connected: bool
    _write_lock: asyncio.Lock
    _send_locked: Callable[[bytes], Awaitable[None]]
    wait_for: Callable[..., Awaitable[None]]

    def __init__(self) -> None:
        self.doc: NotebookDoc = NotebookDoc.empty()
        self.sync_state = SyncState()
        self.epoch: int | None = None  # the room's epoch this client is in (compaction)
        self._compaction: dict[str, Any] | None = None  # a notice whose SNAPSHOT is next
        self._pushed_heads: set[bytes] = set()  # the doc's heads at our last sync message
        self._daemon_heads: set[bytes] = set()  # the heads the daemon's last message named

    async def push(self) -> bool:
        """Send local doc changes to the daemon (after editing `client.doc`); True if sent."""
        if not self._connected:
            raise ClientError("closed", "not connected")
        # Made under the write lock: a message made before an epoch switch and written
        # after its SWITCH would reach the daemon as one of the new epoch.
        async with self._write_lock:
            heads = set(self.doc.get_heads())
            data = self.doc.generate_sync_message(self.sync_state)
            self._pushed_heads = heads  # all of it is sent now, or the daemon has it already
            if data is None:
                return False
            await self._send_locked(self._conn.send(Sync(data)))
        return True

    async def wait_synced(self, timeout: float = 10.0) -> None:
        """Push local changes and wait until the daemon has them.

        The daemon answers a sync message that carried changes with its own heads. It
        has each of ours once it names it as a head, or once a change built on it came
        back (only a peer that has a change can build on it). Neither needs the room
        to go quiet, which a kernel moving widgets may never let it do.
        """
        pushed = set(self.doc.get_heads())
        if pushed == self._pushed_heads:
            return  # no local change since our last message: an answer may never come
        if await self.push():
            await self.wait_for(
                lambda c: all(
                    head in c._daemon_heads or head not in c.doc.get_heads() for head in pushed
                ),
                timeout,
                "doc never synced",
            )

    async def _on_sync(self, data: bytes) -> None:
        """The daemon's SYNC: applied, then answered (with our changes, if any)."""
        self.doc.receive_sync_message(self.sync_state, data)
        self._daemon_heads = sync_message_heads(data)
        await self.push()

    async def _on_snapshot(self, data: bytes) -> None:
        if self._compaction is not None:
            await self._switch_epoch(data)
            return
        # On join: the room's doc. Later (we fell too far behind for one sync
        # message): merged in, so our own unsent changes survive; sync starts over.
        snapshot = NotebookDoc.load(data, check=False)  # the daemon checked it
        if self.doc.get_heads():
            self.doc.merge(snapshot)
        else:
            self.doc = snapshot
        self.sync_state = SyncState()

    async def _switch_epoch(self, snapshot: bytes) -> None:
        """Move to the compacted doc (docs/protocol.md, Compaction), in one step: our late
        changes go out in SWITCH before any frame of the new epoch, then the new doc
        replaces ours. The daemon carries the late changes and syncs them back."""
        notice, self._compaction = self._compaction, None
        assert notice is not None
        async with self._write_lock:  # nothing of the new epoch may go out before SWITCH
            heads = [bytes.fromhex(head) for head in notice.get("heads", [])]
            # The daemon has what its last SYNC named too: a client that lagged behind
            # the switch sends its own late changes, not the whole history.
            changes = self.doc.get_changes_since(heads + list(self._daemon_heads))
            await self._send_locked(b"".join(switch_frames(self._conn, notice["epoch"], changes)))
            self.doc = NotebookDoc.load(snapshot, check=False)
            self.sync_state = SyncState()
            self.epoch = notice["epoch"]
            self._pushed_heads = set()
            self._daemon_heads = set()
