"""The daemon answers every sync message that carried changes with its new heads."""

from __future__ import annotations

from notebook_doc import SyncState
from runtimed.wire import Sync
from tests.conftest import RunningDaemon


async def test_a_change_is_answered_even_when_the_next_message_names_its_heads(
    running: RunningDaemon,
) -> None:
    """A peer's message naming the heads its change made, read before the daemon wrote
    anything, made Automerge decide nothing was left to say: the peer never heard that
    the daemon held its change (a client waiting for that, as wait_synced does, hung)."""
    async with running.client("nb-answer") as client:
        await client.wait_synced()
        client.doc.add_cell(source="x = 1")
        heads = set(client.doc.get_heads())
        carrying = client.doc.generate_sync_message(client.sync_state)
        naming = client.doc.generate_sync_message(SyncState())  # heads only, no change
        assert carrying is not None
        assert naming is not None
        # One write: the daemon reads both frames before its writer runs.
        await client._write(client._conn.send(Sync(carrying)) + client._conn.send(Sync(naming)))

        await client.wait_for(
            lambda c: heads <= c._daemon_heads, 5, "a daemon message naming the new heads"
        )
